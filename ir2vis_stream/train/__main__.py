"""``torchrun --nproc_per_node N -m ir2vis_stream.train DATA... [options]``: the train command, distributed."""

from ..cli import train_command

if __name__ == "__main__":
    train_command(prog_name="python -m ir2vis_stream.train")
