"""Seeded builders for the models the tests, benchmarks and demo use. Nothing is downloaded."""
