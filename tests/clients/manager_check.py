"""PyMySQL on shardcat's manager port: runs each command given on the command line and prints, as JSON,
{command: {"columns": [...], "rows": n}} or {command: {"error": [code, message]}}."""
import json
import sys

import pymysql

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password)
out = {}
with conn.cursor() as cur:
    for cmd in sys.argv[4:]:
        try:
            cur.execute(cmd)
            cols = [d[0] for d in cur.description] if cur.description else []
            out[cmd] = {"columns": cols, "rows": len(cur.fetchall())}
        except pymysql.err.MySQLError as e:
            out[cmd] = {"error": [e.args[0], e.args[1]]}
conn.close()
print(json.dumps(out))
