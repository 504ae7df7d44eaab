"""PyMySQL through shardcat, compared with PyMySQL direct to MariaDB: column metadata (types, lengths,
charsets, decimals), values, transactions (ROLLBACK really rolls back), errors. Exit 1 on any mismatch.

usage: pymysql_check.py PROXY_PORT DIRECT_PORT
"""
import sys
import pymysql

proxy_port, direct_port = int(sys.argv[1]), int(sys.argv[2])
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def connect(port, user, password, db):
    return pymysql.connect(host="127.0.0.1", port=port, user=user, password=password, database=db,
                           charset="utf8mb4", autocommit=False)


proxy = connect(proxy_port, "app", "app", "passthru")
direct = connect(direct_port, "proxy", "proxy", "passthru")

with direct.cursor() as c:
    c.execute("DROP TABLE IF EXISTS py_types")
    c.execute("""CREATE TABLE py_types (
        id INT PRIMARY KEY AUTO_INCREMENT, tiny TINYINT, big BIGINT UNSIGNED, dec1 DECIMAL(12,4),
        flt FLOAT, dbl DOUBLE, vc VARCHAR(40), txt TEXT, bin VARBINARY(10), dt DATE, ts DATETIME(3),
        tm TIME, js JSON, en ENUM('a','b'), bt BIT(3), nul INT NULL) DEFAULT CHARSET=utf8mb4""")
    c.execute("""INSERT INTO py_types (tiny, big, dec1, flt, dbl, vc, txt, bin, dt, ts, tm, js, en, bt, nul)
        VALUES (-5, 18446744073709551615, 12345678.1234, 1.5, 2.25, 'héllo ☃', 'long text', x'00ff',
        '2024-02-29', '2024-02-29 12:34:56.789', '-12:00:01', '{"a": 1}', 'b', b'101', NULL)""")
direct.commit()

queries = [
    "SELECT * FROM py_types",
    "SELECT id, dec1 * 2 AS d2, CONCAT(vc, '!') AS c, COUNT(*) AS n FROM py_types GROUP BY id",
    "SELECT 1 AS one, 'x' AS s, NULL AS n, 1.50 AS d, NOW() IS NOT NULL AS b",
    "SELECT AVG(dec1), SUM(tiny), MAX(ts) FROM py_types",
]
for q in queries:
    results = []
    for conn in (proxy, direct):
        with conn.cursor() as c:
            c.execute(q)
            results.append((c.description, c.fetchall()))
    check(results[0][0] == results[1][0], f"metadata differs for {q}:\n proxy  {results[0][0]}\n direct {results[1][0]}")
    if "NOW()" not in q:
        check(results[0][1] == results[1][1], f"rows differ for {q}: {results[0][1]} vs {results[1][1]}")

# transactions: PyMySQL runs with autocommit off; ROLLBACK must undo the insert
with proxy.cursor() as c:
    c.execute("DROP TABLE IF EXISTS py_tx")
    c.execute("CREATE TABLE py_tx (id INT PRIMARY KEY)")
proxy.commit()
with proxy.cursor() as c:
    c.execute("INSERT INTO py_tx VALUES (1)")
proxy.rollback()
with proxy.cursor() as c:
    c.execute("INSERT INTO py_tx VALUES (2)")
proxy.commit()
with direct.cursor() as c:
    direct.commit()
    c.execute("SELECT id FROM py_tx ORDER BY id")
    check(c.fetchall() == ((2,),), "ROLLBACK through the proxy did not roll back")

# autocommit toggles as the driver does them
proxy.autocommit(True)
check(proxy.get_autocommit() is True, "autocommit flag not reported after autocommit(True)")
with proxy.cursor() as c:
    c.execute("INSERT INTO py_tx VALUES (3)")
with direct.cursor() as c:
    direct.commit()
    c.execute("SELECT COUNT(*) FROM py_tx")
    check(c.fetchone()[0] == 2, "autocommit insert not visible")

# errors carry MySQL codes
for conn, name in ((proxy, "proxy"), (direct, "direct")):
    try:
        with conn.cursor() as c:
            c.execute("SELECT * FROM no_such_table_here")
        check(False, f"{name}: no error for a missing table")
    except pymysql.err.ProgrammingError as e:
        check(e.args[0] == 1146, f"{name}: expected 1146, got {e.args}")

# executemany and lastrowid
with proxy.cursor() as c:
    c.execute("CREATE TABLE IF NOT EXISTS py_ai (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
    c.execute("INSERT INTO py_ai (v) VALUES (7)")
    rid = c.lastrowid
    c.execute("SELECT LAST_INSERT_ID()")
    check(c.fetchone()[0] == rid, "LAST_INSERT_ID() differs from lastrowid")
    n = c.executemany("INSERT INTO py_ai (v) VALUES (%s)", [(1,), (2,), (3,)])
    check(n == 3, f"executemany affected {n}")

# NO_BACKSLASH_ESCAPES: the server's flag reaches PyMySQL, which then escapes quotes by doubling them
# and leaves backslashes alone; values with backslashes and quotes round-trip, on a pass-through
# schema and on a sharded one (through its scanners and parse)
for db in ("passthru", "demo"):
    results = []
    for port, user, pw in ((proxy_port, "app", "app"), (direct_port, "proxy", "proxy")):
        dbname = db if port == proxy_port else ("passthru" if db == "passthru" else "shardcat_default")
        conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=pw, database=dbname,
                               charset="utf8mb4", autocommit=True)
        with conn.cursor() as c:
            c.execute("CREATE TABLE IF NOT EXISTS py_nbe (id INT PRIMARY KEY, v VARCHAR(40))")
            c.execute("DELETE FROM py_nbe")
            c.execute("SET sql_mode = 'NO_BACKSLASH_ESCAPES'")
            flag = bool(conn.server_status & 512)
            esc = conn.escape("foo'bar\\")
            c.execute("INSERT INTO py_nbe VALUES (1, %s), (2, %s)", ("C:\\", "it's \\' x"))
            c.execute("SELECT v FROM py_nbe WHERE v = %s", ("C:\\",))
            hit = c.fetchall()
            c.execute("SELECT id, v FROM py_nbe ORDER BY id")
            results.append((flag, esc, hit, c.fetchall(), bool(conn.server_status & 512)))
        conn.close()
    check(results[0] == results[1], f"NO_BACKSLASH_ESCAPES on {db}: proxy {results[0]} vs direct {results[1]}")
    check(results[1][0] and results[1][1] == "'foo''bar\\'", f"direct baseline: {results[1]}")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("pymysql: all checks passed")
