"""Config loading: YAML, ${VAR} expansion, validation errors one per line, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.app.config import load_config, validate
from monitor.kernel.config.loading import ConfigError
from monitor.kernel.redact import redact


def problems_of(doc: object, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate(doc, environ=environ or {})
    return info.value.problems


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    return path


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "targets: {}\n"), environ={})
    assert config.interval == 15.0
    assert config.http.listen == "0.0.0.0:9187"
    assert config.http.auth_token is None
    assert config.state.url == "sqlite:///monitor-state.db"


def test_env_expansion_with_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
interval: ${INTERVAL:-30s}
http:
  listen: "127.0.0.1:${PORT:-9187}"
  auth_token: ${METRICS_AUTH_TOKEN:-}
targets:
  postgres:
    - {name: primary, url: "${DATABASE_URL}"}
price: $$5
""".replace("price: $$5\n", ""),
    )
    config = load_config(
        path, environ={"PORT": "5000", "DATABASE_URL": "postgres://u:pw@localhost/app"}
    )
    assert config.interval == 30.0
    assert config.http.listen == "127.0.0.1:5000"
    assert config.http.auth_token is None  # empty default means "not configured"
    assert config.targets.postgres[0].dsn() == "postgresql://u:pw@localhost/app"


def test_dollar_dollar_is_a_literal_dollar() -> None:
    config = validate(
        {"http": {"auth_token": "pa$$word"}, "state": {"url": "sqlite:///x.db"}}, environ={}
    )
    assert config.http.auth_token is not None
    assert config.http.auth_token.get_secret_value() == "pa$word"


def test_missing_variable_names_key_path() -> None:
    problems = problems_of({"targets": {"postgres": [{"name": "a", "url": "${DATABASE_URL}"}]}})
    assert problems == ["targets.postgres[0].url: environment variable DATABASE_URL is not set"]


def test_every_problem_on_its_own_line_with_key_path() -> None:
    problems = problems_of(
        {
            "interval": "15 seconds",
            "http": {"listen": "everywhere", "colour": "blue"},
            "targets": {
                "postgres": [
                    {"name": "ok", "url": "mysql://app:hunter22@db.example.com/app"},
                    {"name": "bad name!", "url": "postgres://localhost/x"},
                ],
                "redis": [{"name": "r"}],
            },
            "bogus": 1,
        }
    )
    text = "\n".join(problems)
    assert any(p.startswith("interval: invalid duration '15 seconds'") for p in problems)
    assert any(p.startswith("http.listen: invalid listen address") for p in problems)
    assert "http.colour: unknown key" in problems
    assert "bogus: unknown key" in problems
    assert any(p.startswith("targets.postgres[0].url: expected a postgresql://") for p in problems)
    assert any(p.startswith("targets.postgres[1].name: invalid name") for p in problems)
    assert "targets.redis[0].url: required key is missing" in problems
    assert "hunter22" not in text
    assert len(problems) == 7


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("15", "invalid duration"),
        ("-5s", "invalid duration"),
        ("0s", "must be positive"),
        ("  ", "empty duration"),
        ("1x", "invalid duration"),
        (15, "needs a unit"),
        (True, "expected a duration"),
    ],
)
def test_bad_durations(value: object, fragment: str) -> None:
    problems = problems_of({"interval": value})
    assert len(problems) == 1
    assert problems[0].startswith("interval: ")
    assert fragment in problems[0]


def test_duplicate_target_names_refused() -> None:
    problems = problems_of(
        {
            "targets": {
                "postgres": [
                    {"name": "db", "url": "postgres://localhost/a"},
                    {"name": "db", "url": "postgres://localhost/b"},
                ]
            }
        }
    )
    assert problems == ["targets: targets.postgres: duplicate target name 'db'"]


def test_postgres_url_schemes_and_sslmode() -> None:
    config = validate(
        {
            "targets": {
                "postgres": [
                    {
                        "name": "heroku",
                        "url": "postgres://u:p@ec2-1-2-3-4.compute.amazonaws.com:5432/d",
                    },
                    {"name": "local", "url": "postgresql://u:p@127.0.0.1:5432/d"},
                    {"name": "explicit", "url": "postgres://u:p@db.internal/d?sslmode=verify-full"},
                    {"name": "socket", "url": "postgresql:///d?host=/var/run/postgresql"},
                ]
            }
        },
        environ={},
    )
    dsns = {t.name: t.dsn() for t in config.targets.postgres}
    assert dsns["heroku"] == (
        "postgresql://u:p@ec2-1-2-3-4.compute.amazonaws.com:5432/d?sslmode=require"
    )
    assert dsns["local"] == "postgresql://u:p@127.0.0.1:5432/d"
    assert dsns["explicit"] == "postgresql://u:p@db.internal/d?sslmode=verify-full"
    assert "sslmode" not in dsns["socket"]


@pytest.mark.parametrize(
    "url",
    ["http://db/x", "postgres://u:p@db:99999/x", "postgres:///x", "not a url"],
)
def test_bad_postgres_urls(url: str) -> None:
    problems = problems_of({"targets": {"postgres": [{"name": "a", "url": url}]}})
    assert len(problems) == 1
    assert problems[0].startswith("targets.postgres[0].url: ")


def test_secrets_are_masked_in_errors_and_repr() -> None:
    config = validate(
        {
            "http": {"auth_token": "tok-abcdef123"},
            "targets": {"postgres": [{"name": "a", "url": "postgres://u:s3cretpw@db/x"}]},
        },
        environ={},
    )
    assert "s3cretpw" not in repr(config)
    assert "tok-abcdef123" not in repr(config)
    # loading registered them for redaction everywhere
    assert redact("failed: s3cretpw and tok-abcdef123") == "failed: *** and ***"


def test_basic_auth_needs_both_halves() -> None:
    problems = problems_of({"http": {"username": "grafana"}})
    assert problems == ["http: username and password must be set together for basic auth"]


def test_routes_must_name_known_receivers() -> None:
    problems = problems_of({"routes": [{"receivers": ["nobody"]}]})
    assert problems == ["<root>: routes[0]: unknown receiver 'nobody'"]


def test_unreadable_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml", environ={})
    assert "cannot read configuration file" in info.value.problems[0]
    bad = write(tmp_path, "targets: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad, environ={})
    assert info.value.problems[0].startswith(f"{bad}:")
    assert "invalid YAML" in info.value.problems[0]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "- a\n- b\n"), environ={})
    assert "expected a mapping" in info.value.problems[0]


def test_config_is_frozen() -> None:
    config = validate({}, environ={})
    with pytest.raises(Exception, match="frozen"):
        config.interval = 1.0  # type: ignore[misc]


def test_monitor_config_env_var_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "interval: 20s\n")
    config = load_config(None, environ={"MONITOR_CONFIG": str(path)})
    assert config.interval == 20.0


def test_a_literal_empty_string_is_kept_and_an_empty_expansion_is_unset() -> None:
    """``{team: ""}`` in a matcher means "the label is absent": dropping it made a silence
    or route match everything. ``${TOKEN:-}`` expanding to nothing still means unset."""
    config = validate(
        {
            "http": {"auth_token": "${UNSET_TOKEN:-}"},
            "receivers": {"log": {"type": "log"}},
            "routes": [{"match": {"team": ""}, "receivers": ["log"]}],
            "silences": [
                {"match": {"alertname": "X", "team": ""}, "end": "2030-01-01T00:00:00Z"},
                {"match": {"team": "${UNSET_TEAM:-}"}, "end": "2030-01-01T00:00:00Z"},
            ],
        },
        environ={},
    )
    assert config.http.auth_token is None
    assert config.routes[0].match == {"team": ""}
    assert config.silences[0].match == {"alertname": "X", "team": ""}
    assert config.silences[1].match == {"team": ""}  # never widened to match all
