"""Local Telegram Bot API emulator: the server, a client that acts as users, and a terminal chat."""

# ``EmulatorServer`` speaks the Bot API to the bot (PTB points its base_url at it) and exposes a
# control API under ``/_emu`` that ``EmulatorClient``/``UserSession`` use to play users;
# ``run_terminal_chat`` is a small interactive chat on top of the client.

from bot.emulator.client import (
    BotMessage,
    BotReplies,
    EmulatorClient,
    EmulatorError,
    SeenButton,
    UserSession,
    sample_png,
)
from bot.emulator.limits import FaultPlan, FloodLimits
from bot.emulator.server import EmulatorServer
from bot.emulator.state import ApiError, Delivery, RequestRecord
from bot.emulator.terminal import run_terminal_chat

__all__ = [
    "ApiError",
    "BotMessage",
    "BotReplies",
    "Delivery",
    "EmulatorClient",
    "EmulatorError",
    "EmulatorServer",
    "FaultPlan",
    "FloodLimits",
    "RequestRecord",
    "SeenButton",
    "UserSession",
    "run_terminal_chat",
    "sample_png",
]
