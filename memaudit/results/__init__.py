"""The typed records of what memaudit found: the single source of truth every report is a view of."""
