"""`python -m shop_loadtest.runtime.probe FILE.py ClassName [METHOD|-] [open]`: can a run use
this user class (with this method; `open`: as an open-model journey, one call per arrival)?

`validate` runs it in a child process, because importing Locust patches the process (gevent)
and a user's module may do anything when imported. It loads the class exactly as a run does
(`user_class`), and prints one line saying why not, exit 1; or nothing, exit 0.
"""

from __future__ import annotations

import sys

import locust  # noqa: F401  # first: it patches the process, as in a load process

MARK = "probe: "  # the answer's line, told apart from whatever the module prints


def main(argv: list[str]) -> int:
    from shop_loadtest.runtime.classes import call_method, user_class

    path, name, *rest = argv
    method = rest[0] if rest and rest[0] != "-" else None
    try:
        cls = user_class(path, name, alias="Probe", weight=1.0)
    except TypeError as exc:
        if "is not a Locust User class" in str(exc):
            print(f"{MARK}{name} is not a Locust User class (subclass locust.HttpUser, "
                  f"FastHttpUser or User)")
            return 1
        print(f"{MARK}importing it raised TypeError: {exc}")
        return 1
    except BaseException as exc:
        text = " ".join(str(exc).split())[:200]
        print(f"{MARK}importing it raised {type(exc).__name__}: {text}")
        return 1
    try:
        if method is not None or "open" in rest:
            call_method(cls, method)
    except TypeError as exc:
        print(f"{MARK}{exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
