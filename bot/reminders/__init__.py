"""Scheduled reminders: schedules, the dispatcher, the settings dialog\x27s actions."""
