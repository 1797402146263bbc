"""`zkref server`: run one zkref server from a zoo.cfg (or from flags, for a quick start)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import replace
from pathlib import Path

from zkref.server.config import ConfigError, ZooCfg, load_zoo_cfg


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zkref server",
        description="Run a zkref server. With --config it reads ZooKeeper's zoo.cfg keys; "
        "without, --data-dir and --port describe a standalone server.",
    )
    p.add_argument("--config", type=Path, help="zoo.cfg to read")
    p.add_argument("--data-dir", type=Path, help="dataDir (without --config)")
    p.add_argument("--port", type=int, help="clientPort (overrides the config)")
    p.add_argument("--host", help="clientPortAddress (overrides the config)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio event loop")
    return p


def build_config(a: argparse.Namespace) -> ZooCfg:
    if a.config is not None:
        cfg = load_zoo_cfg(a.config)
    elif a.data_dir is not None:
        cfg = ZooCfg(data_dir=a.data_dir.resolve(), tick_time_ms=2000)
    else:
        raise ConfigError("give --config zoo.cfg, or --data-dir DIR for a standalone server")
    if a.port is not None:
        cfg = replace(cfg, client_port=a.port)
    if a.host is not None:
        cfg = replace(cfg, client_port_address=a.host)
    return cfg


def main(argv: list[str]) -> int:
    a = _parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, a.log_level),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    log = logging.getLogger("zkref.server")
    try:
        cfg = build_config(a)
    except ConfigError as e:
        print(f"zkref server: {e}", file=sys.stderr)
        return 2
    for key in cfg.ignored_keys:
        log.info("zoo.cfg key %s is accepted but not implemented by zkref", key)
    from zkref.server.server import install_event_loop_policy, serve

    loop_name = "asyncio" if a.no_uvloop else install_event_loop_policy()
    log.info("zkref server starting (event loop: %s)", loop_name)

    def ready(port: int) -> None:
        # One line on stdout that tools (and tests) can wait for.
        print(f"zkref server ready on {cfg.client_port_address}:{port}", flush=True)

    # --- ensemble hook (issue 4): two or more server.N lines -> run as an ensemble member
    if len(cfg.servers) > 1 and not (cfg.data_dir / "myid").exists():
        log.warning(
            "zoo.cfg lists %d servers but %s has no myid; zkref runs standalone",
            len(cfg.servers),
            cfg.data_dir,
        )
    elif len(cfg.servers) > 1:
        from zkref.server.peer_host import read_myid, serve_member

        try:
            myid = read_myid(cfg.data_dir)
        except ConfigError as e:
            print(f"zkref server: {e}", file=sys.stderr)
            return 2
        try:
            asyncio.run(serve_member(cfg, myid, ready=ready))
        except (OSError, ConfigError) as e:
            log.error("cannot run member %d: %s", myid, e)
            return 1
        finally:
            logging.shutdown()
        return 0
    # --- end of ensemble hook

    try:
        asyncio.run(serve(cfg, ready=ready))
    except OSError as e:
        log.error("cannot serve on %s:%d: %s", cfg.client_port_address, cfg.client_port, e)
        return 1
    finally:
        logging.shutdown()
    return 0
