"""The ScheduleStore port (domain/ports.py) on each backend: memory, SQLite (the
``schedules`` table) and DynamoDB (items of the task table); ``record`` is the JSON
form of a schedule they share."""
