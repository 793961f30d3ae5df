"""Data files shipped with Almanac (the model catalog)."""
