# Unit tests for the http area.
