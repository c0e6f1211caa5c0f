# Unit tests for the loader area.
