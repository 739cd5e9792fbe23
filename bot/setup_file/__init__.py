"""The commune setup file: communes, villages and police chats in one YAML file, checked as a whole.

`load_setup(path)` reads and checks a file and returns every mistake at once (with its place and,
when known, its line); nothing here touches the database — `bot.services.setup.apply_setup` does.
Reading YAML with lines, the Vietnamese texts and "did you mean" come from `bot.yamlkit`.

The keys allowed at each level are declared in the tables `TOP_KEYS`, `COMMUNE_KEYS`,
`VILLAGE_KEYS` and `POLICE_CHAT_KEYS` (in `readers`). To add a key (e.g. `periods`): write a reader
`_read_periods(ctx, value, where) -> parsed | INVALID` that reports problems with `ctx.error`,
add a row to the table, and a field of the same name to the dataclass built from that table (in `specs`).
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
