"""The vendors an agent process talks to in end-to-end tests, all on loopback.

- Salesforce: ``FakeSalesforce`` served over HTTP (``LoopbackServer``), holding the
  test portfolio, optionally behind injected faults and a tap (a hook run after the
  fake acted and before the agent hears back: where a test kills the agent).
- Slack: the alerting tests' ``FakeSlack`` (pytest-httpserver) behind a loopback proxy,
  with the same faults and tap.

``config()`` is the agent configuration for them (a dict: YAML for a subprocess,
``Settings.model_validate`` in-process).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.config.settings import secret_keys
from agent.core.contract import default_field_specs
from agent.sync.writeback import desired_values, normalise
from tests.salesforce.fake import FakeSalesforce, add_agent_fields, add_task_key
from tests.service.loopback import (
    App,
    Faults,
    LoopbackServer,
    Request,
    Tap,
    proxy_app,
    salesforce_app,
)
from tests.service.portfolio import Portfolio

RULES = Path(__file__).resolve().parents[2] / "rules"
SESSION = "00D000000000001!sf-session-secret"
WEBHOOK_SECRET = "whsec-e2e-secret"
SLACK_CHANNELS = {
    "cx-alerts": "C0CXALERTS",
    "cx-leadership": "C0LEADERS",
    "account-management": "C0CXALERTS",
    "cx-admin": "C0ADMIN",
}


@dataclass
class Switch:
    """An app whose behaviour a test changes while the server runs."""

    app: App

    def __call__(self, request: Request) -> Any:
        return self.app(request)


@dataclass
class VendorStack:
    portfolio: Portfolio
    salesforce: FakeSalesforce
    slack: Any  # tests/alerting FakeSlack
    sf_app: Switch = field(init=False)
    slack_app: Switch = field(init=False)

    def __post_init__(self) -> None:
        add_agent_fields(self.salesforce, default_field_specs())
        add_task_key(self.salesforce)  # provisioned: the agent's tasks can be created
        self.salesforce.tokens.add(SESSION)
        self.ids = self.portfolio.fill_org(self.salesforce)
        self.sf_real = salesforce_app(self.salesforce)
        self.slack_real = proxy_app(self.slack.server.url_for("/").rstrip("/"))
        self.sf_app = Switch(self.sf_real)
        self.slack_app = Switch(self.slack_real)
        self.sf_server = LoopbackServer(self.sf_app)
        self.slack_server = LoopbackServer(self.slack_app)

    def close(self) -> None:
        self.sf_server.close()
        self.slack_server.close()

    def faults(self, rate: float, seed: int = 0, **kwargs: Any) -> tuple[Faults, Faults]:
        """Inject faults into both vendors (Salesforce answers 429 with its own body)."""
        sf = Faults(
            self.sf_real,
            rate,
            seed=seed,
            body_429=b'[{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}]',
            **kwargs,
        )
        slack = Faults(self.slack_real, rate, seed=seed + 1, **kwargs)
        self.sf_app.app, self.slack_app.app = sf, slack
        return sf, slack

    def tap(self, vendor: str, hook: Any) -> None:
        switch = self.sf_app if vendor == "salesforce" else self.slack_app
        switch.app = Tap(switch.app, hook)

    def config(self, tmp_path: Path, **changes: Any) -> dict[str, Any]:
        drop = tmp_path / "drop"
        drop.mkdir(exist_ok=True)
        config: dict[str, Any] = {
            "crm": "salesforce",
            "state_url": f"sqlite:///{tmp_path / 'state.db'}",
            "rules_dir": str(RULES),
            "salesforce": {
                "session_id": SESSION,
                "instance_url": self.sf_server.url,
                "timeout_seconds": 2,
                "collection_size": 2,
                "collections_per_request": 1,
            },
            "slack": {
                "bot_token": "xoxb-test-token",
                "base_url": self.slack_server.url + "/api/",
                "channels": SLACK_CHANNELS,
                "digest_threshold": 1000,
                "max_retries": 2,
                "timeout_seconds": 2,
                "post_per_second": 20,
            },
            "webhook": {"secret": WEBHOOK_SECRET},
            "file_drop": {"path": str(drop), "settle_seconds": 0},
            "server": {"port": 0},
            "schedule": {"grace_seconds": 20, "standby_poll_seconds": 0.3},
        }
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
        return config

    def write_config(self, tmp_path: Path, name: str = "ax.yaml", **changes: Any) -> Path:
        """The YAML config, and its secrets in a dotenv file beside it (``secrets_file``)."""
        path = tmp_path / name
        config = self.config(tmp_path, **changes)
        lines = []
        for key in secret_keys():
            block, _, field = key.partition(".")
            value = config.get(block, {}).pop(field, None) if field else config.pop(block, None)
            if value is not None:
                lines.append(f"AX_{key.upper().replace('.', '__')}={value}\n")
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        secrets_file(path).write_text("".join(lines), encoding="utf-8")
        return path

    def field_mismatches(self, document: Any) -> list[str]:
        """Every agent field whose value in the fake org differs from the figures."""
        specs = default_field_specs()
        problems: list[str] = []
        for obj, sobject in (("account", "Account"), ("contact", "Contact")):
            chosen = {s.salesforce: s for s in specs if s.object == obj}
            wanted = desired_values(document, specs, "salesforce", obj)  # type: ignore[arg-type]
            for record_id, values in wanted.items():
                held = self.salesforce.org.records[sobject][record_id]
                for name, value in values.items():
                    got = normalise(chosen[name], held.get(name))
                    if got != value:
                        problems.append(f"{sobject} {record_id} {name}: {got!r} != {value!r}")
        return problems


def agent_command(config: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from agent.cli import main; main()",
        "run",
        "--config",
        str(config),
        *args,
    ]


def secrets_file(config: Path) -> Path:
    """Where ``write_config`` puts the secrets of ``config`` (AX_SECRETS_FILE)."""
    return config.with_name(config.stem + ".secrets.env")
