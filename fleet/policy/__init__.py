"""The policy language: models (a contract), loading with file:line errors, selection."""
