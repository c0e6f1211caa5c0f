"""A minimal Django project for the integration tests (no database)."""
