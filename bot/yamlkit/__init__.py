"""The YAML reading kit shared by form files and the commune setup file.

`reader` keeps the line of every key and list item, `messages` holds the Vietnamese texts and the error
type, `suggest` the one "did you mean". Nothing here imports Telegram, the database or handlers.
"""
