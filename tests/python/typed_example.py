"""A small typed program on ambisql's public API, for mypy (test_package.py checks it):
connect, cursors, the asyncio API and the exceptions, as a user's typed code has them."""
import asyncio
import os
from typing import Any, Optional

import ambisql
import ambisql.aio


def first_name(url: str, user_id: int) -> Optional[str]:
    conn: ambisql.Connection = ambisql.connect(url=url)
    try:
        cur = conn.cursor()
        n: int = cur.execute("SELECT name FROM users WHERE id = %s", (user_id,))
        row: Any = cur.fetchone()
        conn.commit()
        return str(row[0]) if n and row is not None else None
    except ambisql.IntegrityError as e:
        code: int = e.args[0]
        raise RuntimeError("duplicate: %d" % code) from e
    except ambisql.Error:
        return None
    finally:
        conn.close()


async def count(url: str) -> int:
    conn = await ambisql.aio.connect(url=url)
    cur = conn.cursor()
    await cur.execute("SELECT COUNT(*) FROM users")
    row = await cur.fetchone()
    await conn.commit()
    conn.close()
    return int(row[0])


if __name__ == "__main__":
    url = os.environ.get("DATABASE_URL", "mysql://app:pw@db/shop")
    print(first_name(url, 1), asyncio.run(count(url)))
