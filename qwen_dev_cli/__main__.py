"""``python -m qwen_dev_cli`` is ``qwen-dev``."""

from qwen_dev_cli.entry import main

main()
