-- The rules of account.py, ported line for line to run inside Redis as one atomic
-- script per operation (state_redis.py calls it). Keep the two in step: every
-- function below names the AccountState method it mirrors, and
-- tests/core/test_state_redis.py replays the same operations through both.
--
-- KEYS[1]  the account's state: a JSON string in exactly AccountState.to_json's layout
-- ARGV     read in order by next_arg(): the operation (admit | settle | view | reset),
--          now in seconds or '' for the server's clock (TIME), TICKET_LEASE, QUEUE_POLL,
--          BUCKETS, the seconds a key is kept at least, MAX_COOLDOWN, the policy (rpm, tpm, window,
--          '1'/'0' for a breaker, failure_threshold, recovery_timeout,
--          half_open_max_calls, trial_lease; '' for None), the restraint (retry_ratio or
--          '', throttle_k, retry_floor, HEALTH_WINDOW, HEALTH_BUCKET, RETRY_WINDOW,
--          THROTTLE_MIN_ATTEMPTS), then the operation's own arguments (see the bottom of
--          this file).
--
-- The reply is a JSON string built here, not by cjson: Redis' cjson writes numbers
-- with 14 significant digits (a TIME stamp with microseconds needs 16) and empty
-- arrays as {}.

-- Before Redis 5, a script calling TIME may write only in effects replication mode;
-- from Redis 5 it is the default, and Redis 7 keeps the call as a no-op.
if redis.replicate_commands then
  redis.replicate_commands()
end

local key = KEYS[1]
local argument = 0

local function next_arg()
  argument = argument + 1
  return ARGV[argument]
end

local function opt_number(text)
  if text == '' then
    return nil
  end
  return tonumber(text)
end

local op = next_arg()
local now = opt_number(next_arg())
if now == nil then
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
local TICKET_LEASE = tonumber(next_arg())
local QUEUE_POLL = tonumber(next_arg())
local BUCKETS = tonumber(next_arg())
local KEEP = tonumber(next_arg())
local MAX_COOLDOWN = tonumber(next_arg())

local policy = {
  rpm = opt_number(next_arg()),
  tpm = opt_number(next_arg()),
  window = opt_number(next_arg()) or 0,
  breaker = nil,
}
local has_breaker = next_arg() == '1'
local breaker_args = { next_arg(), next_arg(), next_arg(), next_arg() }
if has_breaker then
  policy.breaker = {
    failure_threshold = tonumber(breaker_args[1]),
    recovery_timeout = tonumber(breaker_args[2]),
    half_open_max_calls = tonumber(breaker_args[3]),
    trial_lease = tonumber(breaker_args[4]),
  }
end
policy.retry_ratio = opt_number(next_arg())
policy.throttle_k = tonumber(next_arg()) or 0
policy.retry_floor = tonumber(next_arg()) or 0
local HEALTH_WINDOW = tonumber(next_arg())
local HEALTH_BUCKET = tonumber(next_arg())
local RETRY_WINDOW = tonumber(next_arg())
local THROTTLE_MIN_ATTEMPTS = tonumber(next_arg())

-- Python's int() on a number: truncation toward zero.
local function int(x)
  if x >= 0 then
    return math.floor(x)
  end
  return math.ceil(x)
end

-- --- JSON out --------------------------------------------------------------------

-- The shortest of 15, 16 or 17 significant digits that reads back as the same
-- double, integers without a fraction, and Python's spelling of the non-finite.
local function num(x)
  if x ~= x then
    return 'NaN'
  elseif x == math.huge then
    return 'Infinity'
  elseif x == -math.huge then
    return '-Infinity'
  elseif x == math.floor(x) and math.abs(x) < 2 ^ 53 then
    return string.format('%d', x)
  end
  for _, format in ipairs({ '%.15g', '%.16g' }) do
    local text = string.format(format, x)
    if tonumber(text) == x then
      return text
    end
  end
  return string.format('%.17g', x)
end

local function str(s)
  return cjson.encode(s)
end

local function opt(x)
  if x == nil then
    return 'null'
  end
  return num(x)
end

local function bool(b)
  if b then
    return 'true'
  end
  return 'false'
end

local function list(items)
  return '[' .. table.concat(items, ',') .. ']'
end

-- A map of string to [number, ...] or number, as a JSON object ('{}' when empty).
local function object(map, value)
  local items = {}
  for k, v in pairs(map) do
    items[#items + 1] = str(k) .. ':' .. value(v)
  end
  return '{' .. table.concat(items, ',') .. '}'
end

local function pair(v)
  return list({ num(v[1]), num(v[2]) })
end

local function cap_json(cap)
  if cap == nil then
    return 'null'
  end
  return pair(cap)
end

-- AccountState.to_json
local function to_json(s)
  local entries = {}
  for i, e in ipairs(s.e) do
    entries[i] = list({ num(e[1]), num(e[2]), num(e[3]), num(e[4]) })
  end
  local health = {}
  for i, h in ipairs(s.h) do
    health[i] = list({ num(h[1]), num(h[2]), num(h[3]), num(h[4]), num(h[5]) })
  end
  local b = s.b
  local breaker = list({
    str(b.state), num(b.epoch), num(b.failures), num(b.opened_at), num(b.successes),
    str(b.reason), object(b.trials, num),
  })
  return '{"e":' .. list(entries)
    .. ',"q":' .. num(s.q)
    .. ',"n":' .. num(s.n)
    .. ',"sr":' .. cap_json(s.sr)
    .. ',"st":' .. cap_json(s.st)
    .. ',"cd":' .. num(s.cd)
    .. ',"b":' .. breaker
    .. ',"w":' .. object(s.w, pair)
    .. ',"h":' .. list(health)
    .. ',"qu":' .. num(s.qu)
    .. '}'
end

local function transitions_json(transitions)
  local items = {}
  for i, t in ipairs(transitions) do
    items[i] = list({ str(t[1]), str(t[2]), str(t[3]) })
  end
  return list(items)
end

-- --- JSON in ---------------------------------------------------------------------

local function fresh()
  return {
    e = {}, q = 0, n = 0, sr = nil, st = nil, cd = 0.0, w = {}, h = {}, qu = 0.0,
    b = { state = 'CLOSED', epoch = 0, failures = 0, opened_at = 0.0, successes = 0,
          reason = '', trials = {} },
  }
end

-- cjson reads an empty array as an empty table and null as cjson.null.
local function absent(v)
  return v == nil or v == cjson.null
end

local function table_or_empty(v)
  if absent(v) then
    return {}
  end
  assert(type(v) == 'table')
  return v
end

local function number(v)
  return assert(tonumber(v))
end

-- Python's int() of a JSON number: NaN and the infinities are refused.
local function integer(v)
  local x = number(v)
  assert(x == x and x ~= math.huge and x ~= -math.huge)
  return int(x)
end

local function cap_from(v)
  if absent(v) or next(table_or_empty(v)) == nil then
    return nil
  end
  return { number(v[1]), number(v[2]) }
end

-- AccountState.from_json: raises for anything that is not a state.
local function from_json(text)
  local d = cjson.decode(text)
  local b = d.b
  assert(b[1] == 'CLOSED' or b[1] == 'OPEN' or b[1] == 'HALF_OPEN')
  local entries = {}
  for i, e in ipairs(table_or_empty(d.e)) do
    entries[i] = { integer(e[1]), integer(e[2]), integer(e[3]), integer(e[4]) }
  end
  local trials = {}
  for k, v in pairs(table_or_empty(b[7])) do
    trials[tostring(k)] = number(v)
  end
  local waiters = {}
  for k, v in pairs(table_or_empty(d.w)) do
    waiters[tostring(k)] = { number(v[1]), number(v[2]) }
  end
  local health = {}
  for i, h in ipairs(table_or_empty(d.h)) do
    health[i] = { integer(h[1]), integer(h[2]), integer(h[3]), integer(h[4]), integer(h[5]) }
  end
  local quota_until = 0.0
  if not absent(d.qu) then
    quota_until = number(d.qu)
  end
  return {
    e = entries, q = integer(d.q), n = integer(d.n),
    sr = cap_from(d.sr), st = cap_from(d.st), cd = number(d.cd), w = waiters,
    h = health, qu = quota_until,
    b = { state = b[1], epoch = integer(b[2]), failures = integer(b[3]),
          opened_at = number(b[4]), successes = integer(b[5]), reason = tostring(b[6]),
          trials = trials },
  }
end

-- A missing key is a fresh account; so is one this version cannot read (written by
-- another version, or damaged), as in the SQLite store: better than failing every
-- request until the key expires.
local function load()
  local text = redis.call('GET', key)
  if not text then
    return fresh()
  end
  local ok, s = pcall(from_json, text)
  if not ok then
    return fresh()
  end
  return s
end

-- Kept at least KEEP seconds after the last write, longer while a cool-down lasts
-- (capped, so an endless one cannot make an endless key).
local function save(s)
  local keep = math.min(math.max(KEEP, policy.window, s.cd - now), 366 * 86400)
  redis.call('SET', key, to_json(s), 'PX', math.ceil(keep * 1000))
end

-- --- the rules -------------------------------------------------------------------

-- AccountState._clamp: stamps from the future (a clock stepped back) come back to now.
local function clamp(s)
  local latest = math.ceil(now * 1000)
  local entries = s.e
  if #entries > 0 and entries[#entries][2] > latest then
    for _, entry in ipairs(entries) do
      if entry[2] > latest then
        entry[2] = latest
        entry[1] = math.min(entry[1], latest)
      end
    end
  end
  for _, w in pairs(s.w) do
    if not (w[1] <= now) then
      w[1] = now
    end
    if not (w[2] <= now + TICKET_LEASE) then
      w[2] = now + TICKET_LEASE
    end
  end
  if not (s.b.opened_at <= now) then
    s.b.opened_at = now
  end
end

-- AccountState._prune
local function prune(s, window)
  clamp(s)
  local horizon = (now - window) * 1000
  local entries = s.e
  local drop = 0
  while drop < #entries and entries[drop + 1][2] <= horizon do
    s.q = s.q - int(entries[drop + 1][3])
    s.n = s.n - int(entries[drop + 1][4])
    drop = drop + 1
  end
  if drop > 0 then
    local kept = {}
    for i = drop + 1, #entries do
      kept[#kept + 1] = entries[i]
    end
    s.e = kept
  end
  if next(s.w) ~= nil then
    local live = {}
    for t, w in pairs(s.w) do
      if w[2] > now then
        live[t] = w
      end
    end
    s.w = live
  end
end

-- AccountState._charge: returns the bucket's stamp (whole milliseconds, rounded up).
local function charge(s, window, tokens)
  local entries = s.e
  local at = math.ceil(now * 1000)
  s.q = s.q + 1
  s.n = s.n + tokens
  if #entries > 0 then
    local last = entries[#entries]
    at = math.max(at, last[2])
    if at - last[1] < window * 1000 / BUCKETS then
      last[2] = at
      last[3] = last[3] + 1
      last[4] = last[4] + tokens
      return at
    end
  end
  entries[#entries + 1] = { at, at, 1, tokens }
  return at
end

-- AccountState._until_freed: column 3 holds requests, 4 tokens (2 and 3 in Python).
local function until_freed(s, window, column, excess)
  for _, entry in ipairs(s.e) do
    excess = excess - entry[column]
    if excess <= 0 then
      return math.max(0.0, entry[2] / 1000 + window - now)
    end
  end
  return 0.0 -- only possible with a budget smaller than one request's need
end

-- AccountState._delay_for
local function delay_for(s, tokens)
  local delay = 0.0
  if policy.rpm ~= nil and s.q + 1 > policy.rpm then
    delay = until_freed(s, policy.window, 3, s.q + 1 - policy.rpm)
  end
  if policy.tpm ~= nil and s.n + tokens > policy.tpm then
    local excess = s.n + tokens - policy.tpm
    delay = math.max(delay, until_freed(s, policy.window, 4, excess))
  end
  for _, check in ipairs({ { s.sr, 1 }, { s.st, tokens } }) do
    local cap, need = check[1], check[2]
    if cap ~= nil and now < cap[2] and cap[1] < need then
      delay = math.max(delay, cap[2] - now)
    end
  end
  return delay
end

-- AccountState._observe: the newest report replaces an older one.
local function observe(s, window, remaining_requests, remaining_tokens, reset_requests,
                       reset_tokens)
  if remaining_requests ~= nil then
    local reset = reset_requests
    if reset == nil then
      reset = window
    end
    s.sr = { remaining_requests, now + reset }
  end
  if remaining_tokens ~= nil then
    local reset = reset_tokens
    if reset == nil then
      reset = window
    end
    s.st = { remaining_tokens, now + reset }
  end
end

-- AccountState._transition
local function transition(s, new, reason, transitions)
  local record = s.b
  local old = record.state
  record.state = new
  record.epoch = record.epoch + 1
  record.failures = 0
  record.successes = 0
  record.trials = {}
  if new == 'OPEN' then
    record.opened_at = now
    record.reason = reason
  end
  if old ~= new then
    transitions[#transitions + 1] = { old, new, reason }
  end
end

-- AccountState._maybe_half_open
local function maybe_half_open(s, breaker, transitions)
  local record = s.b
  if record.state == 'OPEN' and now - record.opened_at >= breaker.recovery_timeout then
    transition(s, 'HALF_OPEN', 'recovery timeout passed', transitions)
  end
end

-- --- account-wide restraint (issue 21) -------------------------------------------
-- Health buckets are { start, attempts, accepts, retries, throttled }: column c of
-- Python's list is c + 1 here.

-- AccountState._count
local function count(s, column)
  local health = s.h
  local start = math.floor(now / HEALTH_BUCKET) * math.floor(HEALTH_BUCKET * 1000)
  if #health == 0 or start > health[#health][1] then
    health[#health + 1] = { start, 0, 0, 0, 0 }
  end
  local bucket = health[#health]
  bucket[column + 1] = bucket[column + 1] + 1
end

-- AccountState._prune_health
local function prune_health(s)
  local horizon = (now - HEALTH_WINDOW - HEALTH_BUCKET) * 1000
  local drop = 0
  while drop < #s.h and s.h[drop + 1][1] <= horizon do
    drop = drop + 1
  end
  if drop > 0 then
    local kept = {}
    for i = drop + 1, #s.h do
      kept[#kept + 1] = s.h[i]
    end
    s.h = kept
  end
end

-- AccountState._health: attempts, accepts, retries, throttled
local function health_of(s, window)
  local horizon = (now - window - HEALTH_BUCKET) * 1000
  local attempts, accepts, retries, throttled = 0, 0, 0, 0
  for _, bucket in ipairs(s.h) do
    if bucket[1] > horizon then
      attempts = attempts + bucket[2]
      accepts = accepts + bucket[3]
      retries = retries + bucket[4]
      throttled = throttled + bucket[5]
    end
  end
  return attempts, accepts, retries, throttled
end

-- AccountState._retry_budget
local function retry_budget(s)
  if policy.retry_ratio == nil then
    return nil
  end
  local _, accepts, retries = health_of(s, RETRY_WINDOW)
  return math.max(0.0, policy.retry_floor + policy.retry_ratio * accepts - retries)
end

-- AccountState._restrain: a reason, wait, detail and chance, or nil
local function restrain(s, draw, retry)
  prune_health(s)
  if now < s.qu then
    local wait = s.qu - now
    return 'quota', wait, string.format('quota exhausted; resets in %.0fs', wait), 0.0
  end
  if draw ~= nil and policy.throttle_k > 0 then
    local attempts, accepts = health_of(s, HEALTH_WINDOW)
    if attempts >= THROTTLE_MIN_ATTEMPTS then
      local chance = math.max(0.0, (attempts - policy.throttle_k * accepts) / (attempts + 1))
      if draw < chance then
        count(s, 4)
        local detail = string.format(
          'throttled locally: %d of the last %d attempts succeeded (p=%.2f)',
          accepts, attempts, chance)
        return 'throttled', 0.0, detail, chance
      end
    end
  end
  if retry then
    local budget = retry_budget(s)
    if budget ~= nil and budget < 1 then
      return 'retry_budget', 0.0, 'retry budget spent', 0.0
    end
  end
  return nil
end

-- AccountState._tally
local function tally(s, outcome, cooldown, quota)
  if quota > 0 then
    s.qu = math.max(s.qu, now + math.min(quota, MAX_COOLDOWN))
  end
  if outcome ~= 'neutral' or cooldown > 0 or quota > 0 then
    prune_health(s)
    count(s, 1)
    if outcome == 'success' then
      count(s, 2)
    end
  end
end

local function refused(reason, wait, detail, transitions, chance)
  return list({ '"r"', str(reason), num(wait), str(detail), transitions_json(transitions),
                num(chance or 0.0) })
end

-- AccountState.admit
local function admit(s, tokens, reservation, ticket, draw, retry)
  local transitions = {}
  prune(s, policy.window)
  if now < s.cd then
    local wait = s.cd - now
    return refused('cooldown', wait,
      string.format('rate limited; cooling down for %.1fs', wait), {})
  end
  local record = s.b
  local breaker = policy.breaker
  if breaker ~= nil then
    maybe_half_open(s, breaker, transitions)
    if record.state == 'OPEN' then
      local wait = math.max(0.0, record.opened_at + breaker.recovery_timeout - now)
      local detail = string.format('circuit open (%s); next trial in %.0fs', record.reason, wait)
      return refused('open', wait, detail, transitions)
    end
    if record.state == 'HALF_OPEN' then
      local live, count = {}, 0
      for r, t in pairs(record.trials) do
        if t > now then
          live[r] = t
          count = count + 1
        end
      end
      record.trials = live
      if count >= breaker.half_open_max_calls then
        local detail = string.format('circuit half-open with %d trial calls in flight', count)
        return refused('half_open_full', 0.0, detail, transitions)
      end
    end
  end
  local reason, wait, detail, chance = restrain(s, draw, retry)
  if reason ~= nil then
    return refused(reason, wait, detail, transitions, chance)
  end
  local delay = delay_for(s, tokens)
  local arrived = now
  if ticket ~= nil and s.w[ticket] ~= nil then
    arrived = s.w[ticket][1]
  end
  local ahead = false
  for t, w in pairs(s.w) do
    if t ~= ticket and w[1] < arrived then
      ahead = true
      break
    end
  end
  if delay > 0 or ahead then
    if ticket ~= nil then
      s.w[ticket] = { arrived, now + TICKET_LEASE }
    end
    local poll = 0.0
    if ahead then
      poll = QUEUE_POLL
    end
    local wait = math.max(delay, poll)
    return refused('budget', wait, string.format('budget spent for %.1fs', wait), transitions)
  end
  if ticket ~= nil then
    s.w[ticket] = nil
  end
  local at = charge(s, policy.window, tokens)
  for _, spend in ipairs({ { s.sr, 1 }, { s.st, tokens } }) do
    local cap, spent = spend[1], spend[2]
    if cap ~= nil and now < cap[2] then
      cap[1] = cap[1] - spent
    end
  end
  if retry and policy.retry_ratio ~= nil then
    count(s, 3)
  end
  local trial = breaker ~= nil and record.state == 'HALF_OPEN'
  if trial then
    record.trials[reservation] = now + breaker.trial_lease
  end
  return list({ '"a"', str(reservation), num(record.epoch), bool(trial), num(at), num(tokens),
                transitions_json(transitions) })
end

-- AccountState.settle and _judge; permit = { reservation, epoch, trial, at, tokens }
local function settle(s, permit, outcome, tokens, cooldown, server, quota)
  local transitions = {}
  prune(s, policy.window)
  if tokens ~= nil then
    local actual = math.max(0, tokens)
    local entries = s.e
    for i = #entries, 1, -1 do
      local entry = entries[i]
      if entry[1] <= permit.at and permit.at <= entry[2] then
        -- Its estimate is in this bucket's total: swap it for the real count.
        local change = math.max(actual - permit.tokens, -int(entry[4]))
        entry[4] = entry[4] + change
        s.n = s.n + change
        break
      end
    end
  end
  if server ~= nil then
    observe(s, policy.window, server[1], server[2], server[3], server[4])
  end
  if cooldown > 0 then -- NaN is not: a server's nonsense is ignored
    s.cd = math.max(s.cd, now + math.min(cooldown, MAX_COOLDOWN))
  end
  tally(s, outcome, cooldown, quota)
  local record = s.b
  if permit.trial then
    record.trials[permit.reservation] = nil
  end
  local breaker = policy.breaker
  if breaker == nil or permit.epoch ~= record.epoch then
    return transitions -- a permit from a past epoch reports into the void
  end
  if outcome == 'neutral' then
    return transitions
  end
  if record.state == 'CLOSED' then
    if outcome == 'success' then
      record.failures = 0
    else
      record.failures = record.failures + 1
      if record.failures >= breaker.failure_threshold then
        local reason = string.format('%d consecutive failures', record.failures)
        transition(s, 'OPEN', reason, transitions)
      end
    end
  elseif record.state == 'HALF_OPEN' then
    if outcome == 'failure' then
      transition(s, 'OPEN', 'a trial call failed', transitions)
    else
      record.successes = record.successes + 1
      if record.successes >= breaker.half_open_max_calls then
        transition(s, 'CLOSED', 'trial calls succeeded', transitions)
      end
    end
  end
  return transitions
end

-- AccountState.view: reads, never writes.
local function view(s)
  local requests, tokens = s.q, s.n
  local horizon = (now - policy.window) * 1000
  for _, entry in ipairs(s.e) do -- buckets that have left the window, not yet pruned
    if entry[2] > horizon then
      break
    end
    requests = requests - int(entry[3])
    tokens = tokens - int(entry[4])
  end
  local requests_left = nil
  if policy.rpm ~= nil then
    requests_left = math.max(0, policy.rpm - requests)
  end
  local tokens_left = nil
  if policy.tpm ~= nil then
    tokens_left = math.max(0, policy.tpm - tokens)
  end
  if s.sr ~= nil and now < s.sr[2] then
    local left = int(s.sr[1])
    if requests_left == nil then
      requests_left = left
    else
      requests_left = math.min(requests_left, left)
    end
  end
  if s.st ~= nil and now < s.st[2] then
    local left = int(s.st[1])
    if tokens_left == nil then
      tokens_left = left
    else
      tokens_left = math.min(tokens_left, left)
    end
  end
  local record = s.b
  local state = 'CLOSED'
  local retry_in = 0.0
  if policy.breaker ~= nil then
    state = record.state
    if state == 'OPEN' then
      retry_in = record.opened_at + policy.breaker.recovery_timeout - now
      if retry_in <= 0 then
        state, retry_in = 'HALF_OPEN', 0.0
      end
    end
  end
  local failures = 0
  if state == 'CLOSED' then
    failures = record.failures
  end
  local waiting = 0
  for _, w in pairs(s.w) do
    if w[2] > now then
      waiting = waiting + 1
    end
  end
  local _, _, _, throttled = health_of(s, HEALTH_WINDOW)
  return list({ str(state), num(retry_in), num(math.max(0.0, s.cd - now)), opt(requests_left),
                opt(tokens_left), num(failures), num(waiting), opt(retry_budget(s)),
                num(throttled), num(math.max(0.0, s.qu - now)) })
end

-- AccountState.reset
local function reset(s)
  local transitions = {}
  s.cd = 0.0
  s.qu = 0.0
  s.h = {}
  transition(s, 'CLOSED', 'reset', transitions)
  return transitions
end

-- --- the operations --------------------------------------------------------------

local s = load()
if op == 'view' then
  return view(s)
end
local reply
if op == 'admit' then
  -- tokens, reservation, '1' with a ticket, the ticket, the throttle's draw or '',
  -- '1' for a retry
  local tokens, reservation = tonumber(next_arg()), next_arg()
  local has_ticket, ticket = next_arg() == '1', next_arg()
  if not has_ticket then
    ticket = nil
  end
  local draw, retry = opt_number(next_arg()), next_arg() == '1'
  reply = admit(s, tokens, reservation, ticket, draw, retry)
elseif op == 'settle' then
  -- the permit (reservation, epoch, '1'/'0' trial, at, tokens), then the settlement
  -- (outcome, tokens, cooldown, quota, '1' with server headers and their four fields)
  local permit = {
    reservation = next_arg(), epoch = tonumber(next_arg()), trial = next_arg() == '1',
    at = tonumber(next_arg()), tokens = tonumber(next_arg()),
  }
  local outcome, tokens, cooldown = next_arg(), opt_number(next_arg()), tonumber(next_arg())
  local quota = tonumber(next_arg())
  local server = nil
  if next_arg() == '1' then
    server = { opt_number(next_arg()), opt_number(next_arg()), opt_number(next_arg()),
               opt_number(next_arg()) }
  end
  local transitions = settle(s, permit, outcome, tokens, cooldown, server, quota)
  -- Settled: the transitions, and the account's view after them.
  reply = list({ transitions_json(transitions), view(s) })
elseif op == 'reset' then
  reply = transitions_json(reset(s))
else
  return redis.error_reply('unknown operation ' .. tostring(op))
end
save(s)
return reply
