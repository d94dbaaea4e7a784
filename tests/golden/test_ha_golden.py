"""Golden files for the router pair: keepalived.conf and conntrackd.conf.

Each router of the pair examples renders to ``tests/golden/ha/<router>.*``.
Rewrite the goldens after an intended change with ``WANWATCH_UPDATE_GOLDENS=1``
and read the diff. Every keepalived.conf must also pass the real
``keepalived --config-test``; conntrackd has no config test (conntrackd(8)), so
tests/lab/test_ha.py runs the rendered file in the real conntrackd.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from wanwatch.config import load
from wanwatch.errors import HaError
from wanwatch.linux import conntrackd, keepalived

HERE = Path(__file__).parent / "ha"
EXAMPLES = Path(__file__).parents[2] / "examples"
STATE_DIR = Path("/var/lib/wanwatch")
Compare = Callable[[str, Path], None]  # the ``golden`` fixture (conftest.py)
ROUTERS = {
    "office-ha-a": EXAMPLES / "office-ha-a.yaml",
    "office-ha-b": EXAMPLES / "office-ha-b.yaml",
}


@pytest.mark.parametrize("router", sorted(ROUTERS))
def test_keepalived_matches_golden(router: str, golden: Compare) -> None:
    golden(keepalived.render(load(ROUTERS[router]), STATE_DIR), HERE / f"{router}.keepalived.conf")


@pytest.mark.parametrize("router", sorted(ROUTERS))
def test_conntrackd_matches_golden(router: str, golden: Compare) -> None:
    golden(conntrackd.render(load(ROUTERS[router]), STATE_DIR), HERE / f"{router}.conntrackd.conf")


@pytest.mark.parametrize("router", sorted(ROUTERS))
def test_golden_passes_keepalived_config_test(router: str, tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(keepalived.render(load(ROUTERS[router]), tmp_path), encoding="utf-8")
    asyncio.run(keepalived.check(conf))  # raises HaError with keepalived's message


def test_password_renders_vrrp2_and_passes(tmp_path: Path) -> None:
    text = (
        ROUTERS["office-ha-a"].read_text().replace("advert_interval: 100ms", "advert_interval: 1s")
    )
    text = text.replace("vrid: 19}", "vrid: 19, password: s3cret}")
    path = tmp_path / "pair.yaml"
    path.write_text(text)
    rendered = keepalived.render(load(path), tmp_path)
    assert "\tvrrp_version 2\n" in rendered and "\t\tauth_pass s3cret\n" in rendered
    assert "\tadvert_int 1\n" in rendered
    conf = tmp_path / "keepalived.conf"
    conf.write_text(rendered, encoding="utf-8")
    asyncio.run(keepalived.check(conf))


def test_check_reports_keepalived_own_message(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    text = keepalived.render(load(ROUTERS["office-ha-a"]), tmp_path)
    conf.write_text(text.replace("virtual_router_id 19", "virtual_router_id 300"), encoding="utf-8")
    with pytest.raises(HaError, match=r"keepalived rejected .*number '300' outside range"):
        asyncio.run(keepalived.check(conf))


def test_penalty_orders_routers_by_uplinks_up() -> None:
    cfg = load(ROUTERS["office-ha-a"])
    step = keepalived.penalty(cfg)
    prio_a, prio_b = 150, 100  # the examples' priorities
    assert prio_a - prio_b < step  # one uplink less than the peer always loses
    # every count of dead uplinks stays distinct inside keepalived's 1..254
    assert len({max(1, prio_a - n * step) for n in range(len(cfg.wans) + 1)}) == len(cfg.wans) + 1
