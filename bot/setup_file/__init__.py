"""The commune setup file: communes, villages and police chats in one YAML file, checked as a whole
(`load_setup`, `loads_setup`, `SetupFile`, `SetupError`).

Design notes: docs/design-notes.md#botsetup_file__init__py
"""

from bot.setup_file.checking import INVALID, Context, Key, Where, read_list, read_mapping, read_text
from bot.setup_file.load import load_setup, loads_setup, parse_setup
from bot.setup_file.names import code_slug, name_key, normalize_name
from bot.setup_file.readers import COMMUNE_KEYS, POLICE_CHAT_KEYS, TOP_KEYS, VILLAGE_KEYS
from bot.setup_file.specs import (
    KIND_LABELS,
    CommuneSpec,
    PoliceChatSpec,
    SetupError,
    SetupFile,
    SetupResult,
    VillageSpec,
)

__all__ = [
    "COMMUNE_KEYS",
    "INVALID",
    "KIND_LABELS",
    "POLICE_CHAT_KEYS",
    "TOP_KEYS",
    "VILLAGE_KEYS",
    "CommuneSpec",
    "Context",
    "Key",
    "PoliceChatSpec",
    "SetupError",
    "SetupFile",
    "SetupResult",
    "VillageSpec",
    "Where",
    "code_slug",
    "load_setup",
    "loads_setup",
    "name_key",
    "normalize_name",
    "parse_setup",
    "read_list",
    "read_mapping",
    "read_text",
]
