"""``authgateway keys new|rotate|list|retire``: the keys file, by hand or from cron.

Every command prints what it did in one or two plain lines and never a
secret.  Exit status: 0 when done, 1 when the file cannot be read or
written (or a retire is refused), 2 for a usage or configuration problem.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

from gateway.config import ConfigError, CookieConfig, load_config
from gateway.keys import DEFAULT_DELAY, add_key, create_keys_file, read_keys, retire_keys, state

__all__ = ("add_keys_parser", "run_keys")

_VALIDITY = CookieConfig().validity

_DESCRIPTION = f"""\
Make and rotate the keys file that signs session cookies (cookie.keys_file),
shared by every gateway that reads it. Gateways reread it within a second of
a change (and on SIGHUP); changes are written atomically under a lock, so
rotations from several places at once all land.

  new FILE      create FILE (mode 0600) with one key, which signs at once
  rotate        add a key: it verifies at once and signs after --delay
                seconds (default {DEFAULT_DELAY}), once every gateway has it;
                older keys keep verifying
  list          each key's id, creation, when it signs and its state
                (pending, signing, verifying, retirable); never a secret
  retire        drop the keys no valid cookie can be signed with any more
                (superseded for longer than the cookie validity), or --id ID

FILE defaults to cookie.keys_file of --config. Run these as root or as
the file's owner: a rewrite by root keeps the file's owner and group."""

_EPILOG = """\
examples:
  authgateway keys new /etc/authgateway/keys.json
  authgateway keys rotate --config /etc/authgateway/authgateway.toml
  authgateway keys list /etc/authgateway/keys.json
  authgateway keys retire --config /etc/authgateway/authgateway.toml     # e.g. daily from cron
  authgateway keys retire /etc/authgateway/keys.json --id 3f9a0c2e       # a key that leaked"""


def add_keys_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "keys", help="make, rotate, list and retire the cookie signing keys (cookie.keys_file)",
        description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("new", "rotate", "list", "retire"), help="what to do (see above)")
    parser.add_argument("file", nargs="?", metavar="FILE", help="the keys file (default: cookie.keys_file of --config)")
    parser.add_argument("-c", "--config", metavar="CONFIG", help="TOML configuration naming the file and the validity")
    parser.add_argument(
        "--delay", type=int, metavar="SECONDS", default=DEFAULT_DELAY,
        help=f"rotate: seconds between publishing the new key and signing with it (default {DEFAULT_DELAY}); "
        "longer than it takes the file to reach every gateway, plus their clock skew",
    )
    parser.add_argument(
        "--validity", type=int, metavar="SECONDS",
        help=f"list, retire: the cookie validity (default: cookie.validity of --config, else {_VALIDITY})",
    )
    parser.add_argument("--id", dest="key_id", metavar="ID", help="retire: drop this key now, whatever its age")


def _when(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _fail(message: str, status: int) -> int:
    print(f"authgateway keys: {message}", file=sys.stderr)
    return status


def run_keys(args: argparse.Namespace) -> int:
    """Run ``authgateway keys ...``; the exit status."""
    path, validity = args.file, args.validity
    if args.config is not None and args.action != "new":
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            return _fail(str(exc), 2)
        path = path or config.cookie.keys_file
        validity = validity if validity is not None else config.cookie.validity
    if not path:
        return _fail("give the keys file, or --config with cookie.keys_file set", 2)
    if validity is None:
        validity = _VALIDITY
    if args.delay < 0 or validity <= 0:
        return _fail("--delay must be 0 or more and --validity more than 0 seconds", 2)
    if args.key_id is not None and args.action != "retire":
        return _fail("--id is for retire", 2)
    now = int(time.time())
    try:
        if args.action == "new":
            key = create_keys_file(path, now)
            print(f"created {path} (mode 0600) with key {key.id}, which signs now")
        elif args.action == "rotate":
            key = add_key(path, now, args.delay)
            print(f"added key {key.id} to {path}: it verifies now and signs from {_when(key.signs_from)}")
            print(f"retire the older keys once their cookies have run out: authgateway keys retire {path}")
        elif args.action == "list":
            keys = read_keys(path)
            print(f"{'ID':<8}  {'CREATED':<20}  {'SIGNS FROM':<20}  STATE")
            for key in keys:
                name, until = state(key, keys, now, validity)
                if name == "pending" and until is not None:
                    name += f" (signs in {until - now} s)"
                elif name == "verifying" and until is not None:
                    name += f" (retirable from {_when(until)})"
                print(f"{key.id:<8}  {_when(key.created):<20}  {_when(key.signs_from):<20}  {name}")
        else:
            dropped = retire_keys(path, now, validity=validity, key_id=args.key_id)
            if dropped:
                print(f"retired from {path}: {', '.join(k.id for k in dropped)}")
            else:
                print(f"nothing to retire in {path}: every key may still have valid cookies (validity {validity} s)")
    except FileExistsError:
        return _fail(f"{path} exists already: rotate adds a key to it", 1)
    except (OSError, ValueError) as exc:
        return _fail(str(exc), 1)
    return 0
