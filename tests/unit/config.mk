# Unit tests for the config area.
