"""The deployment's mapping file: what a helpdesk's ids mean in cxpulse's words.

Zendesk and Freshdesk name a group by a number, statuses may be custom, channels and
bots are the account's own: none of that is in a webhook. One YAML file per
deployment says it (`mapping_file`), checked at start like targets.yaml: an unknown
key, a status that is not a contract status, a team name that is not a label, each
stops the command with one line naming the file and the key.

    default_team: support            # a ticket whose group is not listed
    zendesk:
      teams: {"360004077472": billing, "360004077473": tech}
      statuses: {"12480498776781": pending}   # custom status id -> contract status
      channels: {web_service: web}            # over the built-in channel names
      bots: ["8447388090495"]                 # author ids that are bots
    chatwoot:
      teams: {"1": chat}                      # inbox id (or team name) -> team
    freshdesk: {teams: {"43000512345": billing}, statuses: {"6": on_hold}}
    zammad: {teams: {Users: support}}         # group name -> team (default: the name)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cxpulse.helpdesks.common import STATUSES
from cxpulse.yamlfile import YamlFileError, read_yaml_mapping

Label = str
Status = Literal["open", "pending", "on_hold", "solved", "closed"]
assert STATUSES == ("open", "pending", "on_hold", "solved", "closed")

#: vendor channel name -> contract channel, before the file's own `channels`
DEFAULT_CHANNELS: dict[str, dict[str, str]] = {
    "zendesk": {"mail": "email", "email": "email", "web": "web", "web_form": "web",
                "web_service": "api", "api": "api", "voice": "phone", "phone": "phone",
                "chat": "chat", "native_messaging": "chat", "messaging": "chat",
                "mobile_sdk": "chat", "twitter": "social", "facebook": "social"},
    "chatwoot": {"Channel::WebWidget": "chat", "Channel::Api": "api", "Channel::Email": "email",
                 "Channel::Whatsapp": "whatsapp", "Channel::Sms": "sms",
                 "Channel::TwilioSms": "sms", "Channel::FacebookPage": "social",
                 "Channel::TwitterProfile": "social", "Channel::Telegram": "chat",
                 "Channel::Line": "chat", "Channel::Instagram": "social"},
    # Freshdesk `source` codes (API v2)
    "freshdesk": {"1": "email", "2": "web", "3": "phone", "7": "chat", "9": "web",
                  "10": "email"},
    "zammad": {"email": "email", "phone": "phone", "web": "web", "chat": "chat",
               "note": "web", "sms": "sms", "telegram personal-message": "chat",
               "twitter status": "social", "facebook feed post": "social"},
}  # fmt: skip


class VendorMapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    teams: dict[str, Label] = Field(default_factory=dict)
    statuses: dict[str, Status] = Field(default_factory=dict)
    channels: dict[str, Label] = Field(default_factory=dict)
    bots: list[str] = Field(default_factory=list)


class Mapping(BaseModel):
    """The whole file; every vendor section optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_team: Label = "unassigned"
    zendesk: VendorMapping = Field(default_factory=VendorMapping)
    chatwoot: VendorMapping = Field(default_factory=VendorMapping)
    freshdesk: VendorMapping = Field(default_factory=VendorMapping)
    zammad: VendorMapping = Field(default_factory=VendorMapping)

    def of(self, vendor: str) -> VendorMapping:
        found: VendorMapping = getattr(self, vendor)
        return found

    def team(self, vendor: str, group: str | None, name: str | None = None) -> str:
        """The team of a vendor group id (or name); the group's name, else the default."""
        teams = self.of(vendor).teams
        for candidate in (group, name):
            if candidate is not None and candidate in teams:
                return teams[candidate]
        return (name or self.default_team)[:64]

    def channel(self, vendor: str, raw: str | None) -> str:
        if raw is None:
            return "unknown"
        own = self.of(vendor).channels
        return (own.get(raw) or DEFAULT_CHANNELS[vendor].get(raw) or raw)[:64]

    def is_bot(self, vendor: str, user: str | None) -> bool:
        return user is not None and user in self.of(vendor).bots


class MappingError(ValueError):
    """The mapping file is wrong; the message names the file and the key (one line)."""


def _check_labels(m: Mapping) -> None:
    labels = [("default_team", m.default_team)]
    for vendor in ("zendesk", "chatwoot", "freshdesk", "zammad"):
        v = m.of(vendor)
        labels += [(f"{vendor}.teams.{k}", t) for k, t in v.teams.items()]
        labels += [(f"{vendor}.channels.{k}", c) for k, c in v.channels.items()]
    for where, label in labels:
        if not 1 <= len(label) <= 64 or label != label.strip():
            raise ValueError(f"{where}: {label!r} is not a label (1 to 64 characters)")


def load_mapping(path: str | None) -> Mapping:
    """The file's mapping (None: built-in defaults only)."""
    if path is None:
        return Mapping()
    p = Path(path)
    try:
        data = read_yaml_mapping(p)
    except YamlFileError as exc:
        raise MappingError(f"mapping_file: {exc}") from None
    # YAML reads unquoted numeric ids as ints: ids are text here
    for section in data.values():
        if isinstance(section, dict):
            for name in ("teams", "statuses", "channels"):
                if isinstance(section.get(name), dict):
                    section[name] = {str(k): v for k, v in section[name].items()}
            if isinstance(section.get("bots"), list):
                section["bots"] = [str(b) for b in section["bots"]]
    try:
        mapping = Mapping.model_validate(data)
        _check_labels(mapping)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise MappingError(f"mapping_file: {p}: {where}: {err['msg']}") from None
    except ValueError as exc:
        raise MappingError(f"mapping_file: {p}: {exc}") from None
    return mapping
