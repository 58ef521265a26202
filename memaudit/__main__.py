"""``python -m memaudit``."""

from memaudit.cli import main

main()
