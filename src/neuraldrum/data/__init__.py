"""Data: corpus sources, building, reading, datasets, and a drum synthesiser for tests."""
