"""Settings: one pydantic-settings class, the environment variables of README.md's
*Configuration* section.

Every process reads its configuration through :func:`load_settings`. The supervisor of the
embedded runtime starts Postgres and NATS and hands their URLs to the services through the
same variables (``ADMINDUK_DATABASE_URL``, ``ADMINDUK_NATS_URL``), so a service cannot tell
an embedded server from a production one.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final, Self
from urllib.parse import unquote, urlsplit

from pydantic import (
    AliasChoices,
    Field,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.calendar import OfficeHours

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Development defaults. They make `make run` work out of the box and are refused when
# ADMINDUK_ENVIRONMENT=production, so a real office cannot run on them by accident.
DEV_SECRET = "adminduk-dev-only"  # noqa: S105 - documented development default
DEV_PHONE_NUMBER_ID = "100000000000001"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def _split_urls(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


MAX_REPLICAS: Final = 32
_REPLICA_ITEM = re.compile(r"^(?:(?P<name>[a-z][a-z0-9_-]*)\s*=\s*)?(?P<count>\d+)$")


@dataclass(frozen=True)
class Replicas:
    """How many processes of each service ``adminduk run`` starts (``ADMINDUK_REPLICAS``).

    ``default`` applies to every consuming service not named in ``named``; which services
    those are, and whether a name is known, is the composition root's business
    (``adminduk/supervisor.py``), since the settings know no service.
    """

    default: int = 1
    named: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Replicas:
        """``"2"`` (every consuming service), ``"intake=2,notify=3"`` (those, the others
        once) or both, ``"2,verification=1"``. Raises ``ValueError`` saying what is wrong."""
        default = 1
        named: dict[str, int] = {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            match = _REPLICA_ITEM.match(item)
            if match is None:
                raise ValueError(
                    f"replicas: {item!r} is neither a count (2) nor NAME=COUNT (notify=2)"
                )
            count = int(match["count"])
            if not 1 <= count <= MAX_REPLICAS:
                raise ValueError(f"replicas: {item!r}: a count is 1 to {MAX_REPLICAS}")
            name = match["name"]
            if name is None:
                default = count
            elif name in named:
                raise ValueError(f"replicas: {name} is named twice")
            else:
                named[name] = count
        return cls(default, named)

    def __str__(self) -> str:
        return ",".join([str(self.default), *(f"{n}={c}" for n, c in self.named.items())])


def process_name(service: str, replica: int | None) -> str:
    """A process's name in logs: ``notify`` for the first (or only) replica of notify,
    ``notify-2`` for the second, and so on."""
    return service if not replica else f"{service}-{replica + 1}"


def _parse_replicas(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        return Replicas.parse(value)
    return value


class Settings(BaseSettings):
    """All configuration of adminduk. Field names map to ``ADMINDUK_*`` unless aliased."""

    model_config = SettingsConfigDict(
        env_prefix="ADMINDUK_",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = PROJECT_ROOT / ".adminduk"
    database_url: SecretStr | None = None
    nats_url: Annotated[list[str], NoDecode] = Field(default_factory=list)
    host: str = "127.0.0.1"
    intake_port: int = Field(default=8000, ge=1, le=65535)
    console_port: int = Field(default=8001, ge=1, le=65535)
    simulator_port: int = Field(default=8002, ge=1, le=65535)
    # Processes per service under `adminduk run` (competing consumers; see Replicas), and
    # the index the supervisor gives each replica of a service it runs several times
    # (unset: the process is its service's only one).
    replicas: Annotated[Replicas, NoDecode] = Field(default_factory=Replicas)
    replica: int | None = Field(default=None, ge=0, lt=MAX_REPLICAS)
    # Every process runs on uvloop when it is installed; false: asyncio's own loop.
    uvloop: bool = True
    office_region: str = Field(default="3603", pattern=r"^\d{4}$")
    bootstrap_token: SecretStr | None = None
    integrator_password: SecretStr = SecretStr(DEV_SECRET)
    # Keys of the office, never shared: pseudonyms of phone numbers in stream ids and
    # tickets derived from message ids (unguessable without it).
    secret_key: SecretStr = SecretStr(DEV_SECRET)

    whatsapp_api_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("WHATSAPP_API_BASE_URL")
    )
    whatsapp_access_token: SecretStr = Field(
        default=SecretStr(DEV_SECRET), validation_alias=AliasChoices("WHATSAPP_ACCESS_TOKEN")
    )
    whatsapp_phone_number_id: str = Field(
        default=DEV_PHONE_NUMBER_ID, validation_alias=AliasChoices("WHATSAPP_PHONE_NUMBER_ID")
    )
    whatsapp_app_secret: SecretStr = Field(
        default=SecretStr(DEV_SECRET), validation_alias=AliasChoices("WHATSAPP_APP_SECRET")
    )
    whatsapp_verify_token: SecretStr = Field(
        default=SecretStr(DEV_SECRET), validation_alias=AliasChoices("WHATSAPP_VERIFY_TOKEN")
    )

    # Operational knobs (README.md's second table); the defaults suit one office on a laptop.
    # At least 4: the append writer keeps one connection, the relay/re-drive loops another,
    # and handlers need the rest.
    db_pool_size: int = Field(default=10, ge=4)
    # JetStream forgets a Nats-Msg-Id after this window. The relay republishes at most the
    # batch it had in flight when it stopped, so the window must outlast the longest relay
    # outage we expect to recover from without a duplicate (see docs/ARCHITECTURE.md).
    nats_duplicate_window: timedelta = timedelta(hours=2)
    nats_stream_max_age: timedelta = timedelta(days=30)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_interval: float = Field(default=1.0, gt=0)

    # The office's working hours: queues count waiting in working time, promises in
    # working days. Days are ISO weekday numbers (1 = Monday).
    office_hours: str = Field(default="08:00-16:00", pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")
    office_days: str = "1-5"
    # Verification: how long the automatic checks wait for the files of a request that
    # came without all of them, and how long an idle claim holds a request.
    papers_grace: timedelta = timedelta(minutes=15)
    claim_idle: timedelta = timedelta(minutes=60)
    verification_sweep_interval: float = Field(default=30.0, gt=0)

    # Issuance. Where citizens collect documents (said in the pickup-date message); unset
    # means the office's counter, named after its regency.
    pickup_place: str | None = None
    issuance_sweep_interval: float = Field(default=30.0, gt=0)
    # SIAK, the national population system: unset means the embedded simulator.
    siak_url: str | None = None
    siak_token: SecretStr = SecretStr(DEV_SECRET)
    siak_timeout: float = Field(default=10.0, gt=0)
    siak_concurrency: int = Field(default=4, ge=1, le=64)
    siak_retry_base: timedelta = timedelta(seconds=2)
    siak_retry_max: timedelta = timedelta(minutes=5)
    siak_breaker_failures: int = Field(default=5, ge=1)
    siak_breaker_cooldown: timedelta = timedelta(seconds=30)
    # The embedded SIAK simulator: latency of each call, share of calls that fail, share
    # that succeed but lose their answer (a timeout after the work), and outage windows
    # (comma-separated ISO 8601 intervals, e.g. 2026-12-07T08:00+07:00/PT2H).
    siak_sim_latency: timedelta = timedelta(milliseconds=20)
    siak_sim_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    siak_sim_lost_reply_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    siak_sim_outages: str = ""
    # Letters sent electronically are signed (PAdES) with the office's key, a PKCS#12 file;
    # unset means a development key created under the data folder.
    signing_key_file: Path | None = None
    signing_key_password: SecretStr | None = None

    # Notify. Approved WhatsApp templates for messages outside the 24-hour window: their
    # language and, per catalogue key, the name Meta approved (JSON object; keys missing
    # here use the catalogue's default name, see docs/TEMPLATES.md).
    whatsapp_template_language: str = Field(default="id", pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")
    whatsapp_templates: dict[str, str] = Field(default_factory=dict)
    # Buttons and lists; off sends the text fallback only.
    whatsapp_interactive: bool = True
    # Sending: the business number's throughput (Meta: 80/s by default, up to 1,000/s after
    # an upgrade), per-citizen pacing (about one message per 6 s with small bursts), and
    # retries with exponential backoff and jitter for throttling, 5xx and time-outs.
    notify_rate: float = Field(default=80.0, gt=0, le=1000)
    notify_recipient_interval: timedelta = timedelta(seconds=6)
    notify_recipient_burst: int = Field(default=3, ge=1, le=20)
    notify_retry_base: timedelta = timedelta(seconds=1)
    notify_retry_max: timedelta = timedelta(minutes=5)
    notify_give_up_after: timedelta = timedelta(days=3)
    # A send whose outcome a crash left unknown: how long to wait for a delivery status that
    # proves it went out before sending it again.
    notify_reconcile_after: timedelta = timedelta(minutes=2)
    # How long one attempt may take before it counts as interrupted (longer than the Cloud
    # API client's time-out).
    notify_send_lease: timedelta = timedelta(seconds=60)
    # Safety margin inside the 24-hour window (queues and clocks are not exact).
    notify_window_margin: timedelta = timedelta(minutes=10)
    # The WhatsApp simulator refuses free-form messages outside the 24-hour window, as Meta
    # does; a test that posts its own webhooks to intake (so the simulator never sees the
    # citizen write) turns that off.
    simulator_service_window: bool = True
    # Guided mode: a step-by-step request lapses after this long without an answer.
    guided_idle: timedelta = timedelta(minutes=30)

    # Integrators. Public events (no personal data) are kept this long in JetStream for
    # integrators who read them from a position.
    public_stream_max_age: timedelta = timedelta(days=30)
    # Signed HTTP webhooks: time-out of one POST, exponential backoff between attempts, and
    # how long a subscriber may keep failing before it is parked in the dead-letter state.
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhook_retry_base: timedelta = timedelta(seconds=2)
    webhook_retry_max: timedelta = timedelta(minutes=10)
    webhook_dead_letter_after: timedelta = timedelta(hours=24)
    # Webhooks reach public addresses only; networks named here (comma-separated CIDRs,
    # e.g. 10.20.0.0/16 for an agency inside the office's network) are allowed too.
    webhook_allowed_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)
    # Crypto-shredding: how long a process may keep a citizen's data key in memory (also
    # how long after an erasure a running process may still read that citizen's data).
    key_cache_ttl: timedelta = timedelta(seconds=60)
    # Dashboard figures exported as OpenTelemetry metrics are computed this often.
    dashboard_metrics_interval: float = Field(default=60.0, gt=0)

    @field_validator("nats_url", mode="before")
    @classmethod
    def _parse_nats_urls(cls, value: object) -> object:
        return _split_urls(value)

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        return _split_urls(value)

    @field_validator("replicas", mode="before")
    @classmethod
    def _parse_replicas(cls, value: object) -> object:
        return _parse_replicas(value)

    @model_validator(mode="after")
    def _check_office_hours(self) -> Self:
        # Refused at start-up, in words, rather than in the first process that needs them.
        OfficeHours.parse(self.office_hours, self.office_days)
        return self

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Self:
        if self.environment is Environment.PRODUCTION:
            problems = production_problems(self)
            if problems:
                raise ValueError(
                    "production refuses unsafe settings (docs/SECURITY.md): " + "; ".join(problems)
                )
        return self

    def process_name(self, service: str) -> str:
        """This process's name in logs (see :func:`process_name`)."""
        return process_name(service, self.replica)

    @property
    def first_replica(self) -> bool:
        """True in the process that runs what must run once per service (replica 0)."""
        return not self.replica

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def embedded_nats(self) -> bool:
        return not self.nats_url

    @property
    def uses_simulator(self) -> bool:
        """The simulator process runs when it stands in for WhatsApp or for SIAK."""
        return self.whatsapp_api_base_url is None or self.siak_url is None

    @property
    def simulates_whatsapp(self) -> bool:
        return self.whatsapp_api_base_url is None

    @property
    def siak_base_url(self) -> str:
        """Where SIAK is: the configured endpoint, else the simulator's."""
        if self.siak_url is not None:
            return self.siak_url.rstrip("/")
        return f"http://{self.local_host}:{self.simulator_port}/siak/v1"

    @property
    def whatsapp_base_url(self) -> str:
        """Where the Cloud API is: the configured one, else the built-in simulator."""
        if self.whatsapp_api_base_url is not None:
            return self.whatsapp_api_base_url.rstrip("/")
        return f"http://{self.local_host}:{self.simulator_port}/v21.0"

    @property
    def local_host(self) -> str:
        """The address to reach our own servers at (a wildcard bind is not one)."""
        return "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host  # noqa: S104

    @property
    def key(self) -> bytes:
        return self.secret_key.get_secret_value().encode()

    def database_dsn(self) -> str:
        if self.database_url is None:
            raise RuntimeError(
                "ADMINDUK_DATABASE_URL is not set; the embedded runtime sets it for its services"
            )
        return self.database_url.get_secret_value()


# -- production mode ----------------------------------------------------------------------
# What ADMINDUK_ENVIRONMENT=production refuses (docs/SECURITY.md). Each problem names its
# setting and says why, never the value itself.

MIN_SECRET_LENGTH: Final = 16
MIN_SECRET_BITS: Final = 40.0
MIN_KEY_LENGTH: Final = 32
"""ADMINDUK_SECRET_KEY keys every pseudonym and ticket: a key of its own strength."""
MIN_KEY_BITS: Final = 96.0
_PLACEHOLDER_WORDS: Final = ("changeme", "replace", "placeholder", "fillin", "yoursecret")
_GUESSABLE: Final = frozenset(
    {"secret", "password", "passwd", "token", "admin", "adminduk", "test", "dev", "example"}
)
_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"})  # noqa: S104


def _estimated_bits(value: str) -> float:
    """Shannon entropy of the value's own characters times its length: a rough lower bound
    that catches repetition (``aaaa...``, ``abab...``), not a measure of randomness."""
    counts = Counter(value)
    return -sum(count * math.log2(count / len(value)) for count in counts.values())


def _folded(value: str) -> str:
    return re.sub(r"[^a-z0-9]", "", value.lower())


def _is_placeholder(value: str) -> bool:
    folded = _folded(value)
    return any(word in folded for word in _PLACEHOLDER_WORDS)


def secret_problem(value: str, *, min_length: int, min_bits: float) -> str | None:
    """Why ``value`` cannot protect a production office (``None``: it can)."""
    if value == DEV_SECRET:
        return "is the development default"
    if _is_placeholder(value):
        return "is a placeholder (fill in the value of deploy/adminduk.env.example)"
    if len(value) < min_length:
        return f"is too short (at least {min_length} characters)"
    if _folded(value) in _GUESSABLE or _estimated_bits(value) < min_bits:
        return "is guessable (too little entropy: use a random value, e.g. openssl rand -hex 32)"
    return None


def _url_password_problem(url: str) -> str | None:
    """The password inside a ``scheme://user:password@host`` URL, when there is one (a URL
    without one may authenticate otherwise: certificates, ``.pgpass``, NATS nkeys)."""
    try:
        parts = urlsplit(url.strip())
        password, user = parts.password, parts.username
    except ValueError:
        return "is not a URL"
    if password is not None:
        why = secret_problem(
            unquote(password), min_length=MIN_SECRET_LENGTH, min_bits=MIN_SECRET_BITS
        )
        if why is not None:
            return f"holds a password that {why}"
    elif user is not None and _is_placeholder(unquote(user)):
        return "holds a token that is a placeholder"
    return None


def _cloud_api_problem(settings: Settings) -> str | None:
    url = settings.whatsapp_api_base_url
    if url is None:
        return (
            "is unset (the built-in simulator would stand in for the Cloud API, with the real "
            "secrets); set https://graph.facebook.com/v21.0"
        )
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return "is not a URL"
    if parts.scheme != "https" or not parts.hostname:
        return "must be an https:// URL of the Cloud API"
    own = _LOOPBACK_NAMES | {settings.host, settings.local_host}
    if parts.hostname in own and port in {None, settings.simulator_port}:
        return "points at the built-in simulator; set the Cloud API's URL"
    return None


def _secret_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    why = secret_problem(
        settings.secret_key.get_secret_value(), min_length=MIN_KEY_LENGTH, min_bits=MIN_KEY_BITS
    )
    if why is not None:
        problems.append(f"ADMINDUK_SECRET_KEY {why}")
    secrets: list[tuple[str, SecretStr | None]] = [
        ("WHATSAPP_ACCESS_TOKEN", settings.whatsapp_access_token),
        ("WHATSAPP_APP_SECRET", settings.whatsapp_app_secret),
        ("WHATSAPP_VERIFY_TOKEN", settings.whatsapp_verify_token),
        ("ADMINDUK_INTEGRATOR_PASSWORD", settings.integrator_password),
        ("ADMINDUK_BOOTSTRAP_TOKEN", settings.bootstrap_token),
        ("ADMINDUK_SIAK_TOKEN", settings.siak_token),
        ("ADMINDUK_SIGNING_KEY_PASSWORD", settings.signing_key_password),
    ]
    for name, secret in secrets:
        if secret is not None:
            why = secret_problem(
                secret.get_secret_value(), min_length=MIN_SECRET_LENGTH, min_bits=MIN_SECRET_BITS
            )
            if why is not None:
                problems.append(f"{name} {why}")
    return problems


def _server_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    if settings.database_url is None:
        problems.append("ADMINDUK_DATABASE_URL is unset (embedded Postgres in production)")
    else:
        why = _url_password_problem(settings.database_url.get_secret_value())
        if why is not None:
            problems.append(f"ADMINDUK_DATABASE_URL {why}")
    if not settings.nats_url:
        problems.append("ADMINDUK_NATS_URL is unset (embedded NATS in production)")
    nats = (_url_password_problem(url) for url in settings.nats_url)
    why = next((found for found in nats if found is not None), None)
    if why is not None:
        problems.append(f"ADMINDUK_NATS_URL {why}")
    if settings.siak_url is None:
        problems.append("ADMINDUK_SIAK_URL is unset (the SIAK simulator in production)")
    if settings.signing_key_file is None:
        problems.append("ADMINDUK_SIGNING_KEY_FILE is unset (a development signing key)")
    return problems


def production_problems(settings: Settings) -> list[str]:
    """Everything ``ADMINDUK_ENVIRONMENT=production`` refuses in ``settings``, one entry per
    offending setting, naming it and saying why, never showing its value (empty: nothing
    to refuse)."""
    problems: list[str] = []
    cloud = _cloud_api_problem(settings)
    if cloud is not None:
        problems.append(f"WHATSAPP_API_BASE_URL {cloud}")
    phone_number_id = settings.whatsapp_phone_number_id
    if phone_number_id == DEV_PHONE_NUMBER_ID:
        problems.append("WHATSAPP_PHONE_NUMBER_ID is the development default")
    elif not phone_number_id.isdigit():
        problems.append("WHATSAPP_PHONE_NUMBER_ID is not a phone number id (digits, from Meta)")
    return problems + _secret_problems(settings) + _server_problems(settings)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; keyword overrides win (tests use them)."""
    return Settings(**overrides)  # type: ignore[arg-type]
