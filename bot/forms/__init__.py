"""Questionnaires: definitions, the safe condition language, Vietnamese input parsing and the pure engine."""
