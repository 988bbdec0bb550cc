"""Shared test helpers (data locators, loaders)."""
