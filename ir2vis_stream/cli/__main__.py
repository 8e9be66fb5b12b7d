"""``python -m ir2vis_stream.cli``: the same as the ``ir2vis-stream`` command."""
from . import main

main()
