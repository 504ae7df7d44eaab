-- bench/ideal-mod.lua — a proxy that costs nothing, for bench/mod-ceiling: each sysbench thread holds one
-- connection to each shard of bench/config's sb_mod (mod-long over two servers: even ids on the one at
-- 3307) and runs oltp_read_only's transaction (10 point selects, simple / SUM / ORDER BY / DISTINCT ranges
-- of 100 ids) as shardcat's shards run it: points on their shard, every range on both, the merged ones as
-- shardcat's lean texts, BEGIN on a shard before its first statement (its own round trip: shardcat sends it
-- ahead of that statement) and COMMIT on each. The rows are read and not merged: no proxy work at all.
sysbench.cmdline.options = { table_size = {"rows", 10000}, range_size = {"", 100} }
local RANGE = "SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ?"
function thread_init()
  drv = sysbench.sql.driver()
  shard = {}
  local tries = 0
  while (shard[0] == nil or shard[1] == nil) and tries < 50 do
    local c = drv:connect()
    local rs = c:query("SELECT @@port")
    local port = tonumber(rs:fetch_row()[1])
    local i = (port == 3307) and 0 or 1
    if shard[i] == nil then shard[i] = c else c:disconnect() end
    tries = tries + 1
  end
  point, prange, pp, pa, pb = {}, {}, {}, {}, {}
  for i = 0, 1 do
    point[i] = shard[i]:prepare("SELECT c FROM sbtest1 WHERE id=?")
    pp[i] = point[i]:bind_create(sysbench.sql.type.INT); point[i]:bind_param(pp[i])
    prange[i] = shard[i]:prepare(RANGE)
    pa[i] = prange[i]:bind_create(sysbench.sql.type.INT); pb[i] = prange[i]:bind_create(sysbench.sql.type.INT)
    prange[i]:bind_param(pa[i], pb[i])
  end
end
local function rid() return math.random(1, sysbench.opt.table_size) end
function event()
  local begun = {false, false}
  local function on(i)
    if not begun[i + 1] then shard[i]:query("BEGIN"); begun[i + 1] = true end
    return shard[i]
  end
  for _ = 1, 10 do
    local id = rid(); local i = id % 2
    on(i); pp[i]:set(id); point[i]:execute()
  end
  local a = rid(); local b = a + sysbench.opt.range_size - 1
  for i = 0, 1 do on(i); pa[i]:set(a); pb[i]:set(b); prange[i]:execute() end
  a = rid(); b = a + sysbench.opt.range_size - 1
  for i = 0, 1 do on(i):query(string.format("SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN %d AND %d", a, b)) end
  a = rid(); b = a + sysbench.opt.range_size - 1
  for i = 0, 1 do on(i):query(string.format("SELECT c, NULL AS `__sc_0`, NULL AS `__sc_1` FROM sbtest1 WHERE id BETWEEN %d AND %d ORDER BY c", a, b)) end
  a = rid(); b = a + sysbench.opt.range_size - 1
  for i = 0, 1 do on(i):query(string.format("SELECT DISTINCT c, NULL AS `__sc_0`, NULL AS `__sc_1` FROM sbtest1 WHERE id BETWEEN %d AND %d ORDER BY c", a, b)) end
  for i = 0, 1 do if begun[i + 1] then shard[i]:query("COMMIT") end end
end
