'use strict'
/*
 * Helpers for the kafkajs scenarios (the Node counterpart of lib/compat.py).
 *
 * Env from compat-tests/run: STROM_BOOTSTRAP (host:port), COMPAT_TOPIC (unique
 * topic prefix), STROM_BIN (for scenarios that start their own broker).
 * Exit codes: 0 pass, 1 fail, 3 unsupported by client.
 * KAFKAJS_LOG_LEVEL=DEBUG (or INFO, WARN, ERROR, NOTHING) turns on kafkajs'
 * protocol logging, e.g. to decode what was sent when a scenario fails.
 *
 * kafkajs has no assign(): every consumer is a group member. The non-group
 * scenarios consume with a throwaway group (autoCommit off, fromBeginning,
 * nothing committed), so they also need a working classic group coordinator.
 */
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const { Kafka, logLevel, Partitioners } = require('kafkajs')

const EXIT_PASS = 0
const EXIT_FAIL = 1
const EXIT_UNSUPPORTED = 3
const N_MESSAGES = parseInt(process.env.COMPAT_MESSAGES || '10000', 10)

function ts() {
  return new Date().toISOString().slice(11, 19)
}
function log(msg) {
  process.stdout.write(`[${ts()}] ${msg}\n`)
}
// Async cleanups (e.g. stopping an own broker) that run after the verdict is printed;
// each is called with the exit code (EXIT_PASS, EXIT_FAIL, EXIT_UNSUPPORTED).
const cleanups = []
function atExit(fn) {
  cleanups.push(fn)
}
// Print the verdict, run the cleanups (≤ 20 s), then process.exit(): never hang in
// client shutdown. Only the first verdict counts.
let finishing = false
function finish(code, line) {
  if (finishing) return
  finishing = true
  process.stdout.write(line + '\n')
  const hard = setTimeout(() => process.exit(code), 20000)
  Promise.allSettled(cleanups.map(f => Promise.resolve().then(() => f(code)))).then(() => {
    clearTimeout(hard)
    process.stdout.write('', () => process.exit(code))
  })
}
function fail(msg) {
  finish(EXIT_FAIL, 'FAIL: ' + msg)
  throw new Halt()
}
function unsupported(msg) {
  finish(EXIT_UNSUPPORTED, 'UNSUPPORTED: ' + msg)
  throw new Halt()
}
function passed(msg = 'ok') {
  finish(EXIT_PASS, 'PASS: ' + msg)
  throw new Halt()
}
// Thrown by fail/unsupported/passed so the caller stops at once; main() ignores it.
class Halt extends Error {}

// Runs an async scenario body; any unexpected exception is a failure.
function main(fn) {
  const guard = setTimeout(() => {}, 1 << 30) // keep the loop alive until the verdict
  fn().then(
    () => {
      clearTimeout(guard)
      fail('scenario ended without a verdict')
    },
    e => {
      if (e instanceof Halt) return
      finish(EXIT_FAIL, 'FAIL: unexpected error: ' + (e && e.stack ? e.stack : String(e)))
    }
  ).catch(() => {})
}

function bootstrap() {
  const b = process.env.STROM_BOOTSTRAP
  if (!b) fail('STROM_BOOTSTRAP is not set (run scenarios through compat-tests/run)')
  return b
}
function topic(suffix = '') {
  const base = process.env.COMPAT_TOPIC || `compat-adhoc-${process.pid}-${Math.floor(Date.now() / 1000)}`
  return base + suffix
}

class Deadline {
  constructor(seconds) {
    this.end = Date.now() + seconds * 1000
  }
  left() {
    return Math.max(0, (this.end - Date.now()) / 1000)
  }
  expired() {
    return Date.now() >= this.end
  }
}
const sleep = ms => new Promise(r => setTimeout(r, ms))

// Rejects with a clear message if `promise` does not settle within `seconds`.
function within(seconds, what, promise) {
  let t
  return Promise.race([
    promise,
    new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what}: no result within ${seconds}s`)), seconds * 1000)
    }),
  ]).finally(() => clearTimeout(t))
}

// Waits until cond() is true (polling), failing with `what` after `seconds`.
async function waitFor(cond, seconds, what) {
  const dl = new Deadline(seconds)
  while (!dl.expired()) {
    if (await cond()) return
    await sleep(50)
  }
  fail(`timed out after ${seconds}s waiting for ${typeof what === 'function' ? what() : what}`)
}

function short(v, limit = 64) {
  if (v === null || v === undefined) return String(v)
  if (Buffer.isBuffer(v)) {
    const more = v.length > limit ? `...(+${v.length - limit} bytes)` : ''
    return `<${v.subarray(0, limit).toString('hex')}>${more} [len=${v.length}]`
  }
  const r = JSON.stringify(v, (k, x) =>
    x && x.type === 'Buffer' && Array.isArray(x.data) ? `<${Buffer.from(x.data).toString('hex')}>` : x
  )
  return r && r.length > 200 ? r.slice(0, 200) + '...' : r
}

function equal(a, b) {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b)
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => equal(x, b[i]))
  }
  return a === b
}

// First difference of two arrays (index, expected vs got, per field for arrays), or null.
function firstDiff(expected, got, what = 'message') {
  const n = Math.min(expected.length, got.length)
  for (let i = 0; i < n; i++) {
    const e = expected[i]
    const g = got[i]
    if (!equal(e, g)) {
      let detail
      if (Array.isArray(e) && Array.isArray(g) && e.length === g.length) {
        detail = e
          .map((ee, j) => (equal(ee, g[j]) ? null : `field ${j}: expected ${short(ee)}, got ${short(g[j])}`))
          .filter(x => x)
          .join('; ')
      } else {
        detail = `expected ${short(e)}, got ${short(g)}`
      }
      return `first differing ${what} at index ${i} of ${expected.length}/${got.length}: ${detail}`
    }
  }
  if (expected.length !== got.length) {
    if (got.length < expected.length) {
      return `got ${got.length} ${what}s, expected ${expected.length}; first missing at index ${n}: ${short(expected[n])}`
    }
    return `got ${got.length} ${what}s, expected ${expected.length}; first extra at index ${n}: ${short(got[n])}`
  }
  return null
}

// ---------------------------------------------------------------------------
// Data sets: same shapes as lib/compat.py (not the same bytes: own PRNG).

function rng(seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    bytes: n => {
      const b = Buffer.alloc(n)
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256)
      return b
    },
  }
}
const pad = (i, w) => String(i).padStart(w, '0')

// produce-consume-auto: [key, value] Buffers; distinct keys; value 0 = all 256
// byte values, value 1 empty (not null), five ~10 KB values, every 10th 0x00/0xff
// runs, the rest random bytes of 1..300 prefixed with the index.
function autoDataset(n = N_MESSAGES, seed = 20240601) {
  const r = rng(seed)
  const big = new Set([2, 3, Math.floor(n / 2), n - 1, Math.floor(n / 3)])
  const out = []
  for (let i = 0; i < n; i++) {
    const key = Buffer.from(`key-${pad(i, 6)}`)
    let val
    if (i === 0) val = Buffer.from([...Array(256).keys()])
    else if (i === 1) val = Buffer.alloc(0)
    else if (big.has(i)) val = Buffer.concat([Buffer.from(`big-${pad(i, 6)}:`), r.bytes(10 * 1024)])
    else if (i % 10 === 0) val = Buffer.concat([Buffer.alloc(r.int(1, 50), 0x00), Buffer.alloc(r.int(1, 50), 0xff)])
    else val = Buffer.concat([Buffer.from(`${pad(i, 6)}:`), r.bytes(r.int(1, 300))])
    out.push([key, val])
  }
  return out
}

// produce-consume-explicit: keys repeat (nkeys distinct), values unique.
function keyedDataset(n = N_MESSAGES, nkeys = 1000, seed = 4242) {
  const r = rng(seed)
  const out = []
  for (let i = 0; i < n; i++) {
    out.push([Buffer.from(`k${pad(i % nkeys, 4)}`), Buffer.concat([Buffer.from(`msg-${pad(i, 6)}|`), r.bytes(r.int(0, 64))])])
  }
  return out
}

// headers-timestamps: [{key, value, headers: [[name, Buffer|null]], ts}], headers
// order-significant with duplicate names, empty/binary values, non-ASCII names;
// explicit CreateTime timestamps, non-monotonic, all distinct.
function headersDataset(n = 300, allowNullHeaderValue = true, baseTs = 1600000000000) {
  const r = rng(777)
  const out = []
  for (let i = 0; i < n; i++) {
    const kind = i % 6
    let headers
    if (kind === 0) headers = []
    else if (kind === 1) headers = [['trace-id', Buffer.from(r.bytes(16).toString('hex'))]]
    else if (kind === 2) headers = [['dup', Buffer.from('first')], ['dup', Buffer.from('second')], ['other', Buffer.from('x')], ['dup', Buffer.from('third')]]
    else if (kind === 3) headers = [['empty', Buffer.alloc(0)], ['bin', Buffer.from([...Array(256).keys()])]]
    else if (kind === 4) headers = [['n\u00e4me-\u00fcnicode', Buffer.from('v\u00e4lue', 'utf8')], ['i', Buffer.from(String(i))]]
    else {
      headers = []
      for (let j = 1; j <= 8; j++) headers.push([`h${j}`, Buffer.alloc(j, j)])
      if (allowNullHeaderValue) headers.push(['null-value', null])
    }
    const t = baseTs + ((i * 7919) % n) * 1000 + i
    out.push({ key: Buffer.from(`hk-${pad(i, 4)}`), value: Buffer.from(`hv-${pad(i, 4)}`), headers, ts: t })
  }
  return out
}

// The "scenarios every client runs" (README): same shapes and constants as
// lib/compat.py (large-messages, compression, seek-timestamp, idempotent).
const LARGE_COUNT = 8
const LARGE_VALUE_BYTES = 1048576
const LARGE_MAX_BYTES = 4194304
// [[key, value]]: keys large-0..large-7, values 1 MiB of seeded random bytes, all different.
function largeDataset(seed = 1048576) {
  const r = rng(seed)
  const out = []
  for (let i = 0; i < LARGE_COUNT; i++) out.push([Buffer.from(`large-${i}`), r.bytes(LARGE_VALUE_BYTES)])
  return out
}
// [offset, key, value] records vs largeDataset(): the first difference, located to the byte.
function checkLarge(data, got) {
  for (let i = 0; i < data.length; i++) {
    const [k, v] = data[i]
    if (i >= got.length) return `got ${got.length} large records, expected ${data.length}; first missing: index ${i} (key ${k})`
    const [off, gk, gv] = got[i]
    if (off !== i) return `large record index ${i}: offset expected ${i}, got ${off}`
    if (!equal(gk, k)) return `large record index ${i} (offset ${off}): key expected ${short(k)}, got ${short(gk)}`
    if (!equal(gv, v)) {
      if (!Buffer.isBuffer(gv)) return `large record index ${i} (offset ${off}): value expected ${short(v)}, got ${short(gv)}`
      const n = Math.min(v.length, gv.length)
      let at = 0
      while (at < n && v[at] === gv[at]) at++
      return `large record index ${i} (offset ${off}, key ${k}): value differs: lengths ${v.length}/${gv.length} (expected/got), first differing byte at ${at}: expected ${short(v.subarray(at, at + 16))}, got ${short(gv.subarray(at, at + 16))}`
    }
  }
  if (got.length > data.length) return `got ${got.length} large records, expected ${data.length}; first extra at offset ${got[data.length][0]}`
  return null
}

const COMPRESSION_COUNT = 1000
// [[key, value]]: key-%06d, the value repeats its index ("000042," 20..99 times).
function compressionDataset(n = COMPRESSION_COUNT) {
  const out = []
  for (let i = 0; i < n; i++) out.push([Buffer.from(`key-${pad(i, 6)}`), Buffer.from(`${pad(i, 6)},`.repeat(20 + (i % 80)))])
  return out
}

const SEEK_COUNT = 100
const SEEK_INDEX = 42
// now − 1 h, rounded down to the second, in ms.
function seekT0() {
  return (Math.floor(Date.now() / 1000) - 3600) * 1000
}
// [{key, value, ts}] with CreateTime t0 + 1000·i.
function timestampDataset(t0, n = SEEK_COUNT) {
  const out = []
  for (let i = 0; i < n; i++) out.push({ key: Buffer.from(`ts-${pad(i, 3)}`), value: Buffer.from(`tv-${pad(i, 3)}`), ts: t0 + 1000 * i })
  return out
}
// [name, timestamp, expected offset or null]: 500 ms before record `index`, exactly at
// it, and 1 ms after the last record (no offset).
function seekQueries(t0, n = SEEK_COUNT, index = SEEK_INDEX) {
  return [
    [`T0+${index}s-500ms`, t0 + 1000 * index - 500, index],
    [`T0+${index}s`, t0 + 1000 * index, index],
    ['after the last record', t0 + 1000 * (n - 1) + 1, null],
  ]
}

const IDEMPOTENT_COUNT = 5000
const IDEMPOTENT_PARTITIONS = 3
// [[key, value]]: key-%04d (i % 100), value-%06d.
function idempotentDataset(n = IDEMPOTENT_COUNT) {
  const out = []
  for (let i = 0; i < n; i++) out.push([Buffer.from(`key-${pad(i % 100, 4)}`), Buffer.from(`value-${pad(i, 6)}`)])
  return out
}

// ---------------------------------------------------------------------------
// kafkajs

// `extra`: more client config (e.g. `sasl`), overriding the defaults below.
function kafka(brokers = bootstrap(), clientId = 'strom-compat-kafkajs', extra = {}) {
  const level = (process.env.KAFKAJS_LOG_LEVEL || 'WARN').toUpperCase()
  return new Kafka({
    clientId,
    brokers: [brokers],
    logLevel: logLevel[level] === undefined ? logLevel.WARN : logLevel[level],
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 3000 },
    ...extra,
  })
}

// Sends `records` ({key, value, headers?, timestamp?, partition?}) in order, in
// chunks of `chunk` per send() call (acks=-1, the kafkajs default; `compression`: a
// CompressionTypes value, default none). Returns
// [{partition, offset}] in produce order: kafkajs reports one base offset per
// partition and send(), so each message's offset is that base plus its index among
// the call's messages for the partition (kafkajs keeps their order); the partition
// of a keyed message is what the client's default partitioner computes.
async function produceAll(producer, admin, topicName, records, { chunk = 500, timeout = 120, compression } = {}) {
  const dl = new Deadline(timeout)
  const partitioner = Partitioners.DefaultPartitioner()
  let partitionMetadata = null // fetched after the first send(), which may auto-create the topic
  const reports = []
  for (let start = 0; start < records.length; start += chunk) {
    if (dl.expired()) fail(`timed out producing (at ${start} of ${records.length})`)
    const msgs = records.slice(start, start + chunk)
    let res
    try {
      res = await within(dl.left() + 1, 'producer.send', producer.send({ topic: topicName, messages: msgs, compression }))
    } catch (e) {
      fail(`send() of messages ${start}..${start + msgs.length - 1} failed: ${e && e.stack ? e.stack : e}`)
    }
    if (!partitionMetadata) partitionMetadata = (await admin.fetchTopicMetadata({ topics: [topicName] })).topics[0].partitions
    const parts = msgs.map(m => {
      if (m.partition !== undefined && m.partition !== null) return m.partition
      if (m.key === null || m.key === undefined) fail('produceAll needs a key or an explicit partition')
      return partitioner({ topic: topicName, partitionMetadata, message: m })
    })
    const base = {}
    for (const r of res) {
      if (r.errorCode !== 0) fail(`produce to partition ${r.partition}: error code ${r.errorCode}`)
      base[r.partition] = BigInt(r.baseOffset)
    }
    const seen = {}
    for (const p of parts) {
      if (base[p] === undefined) fail(`send() result has no partition ${p} (result ${JSON.stringify(res)})`)
      const k = seen[p] || 0
      seen[p] = k + 1
      reports.push({ partition: p, offset: Number(base[p] + BigInt(k)) })
    }
  }
  return reports
}

// {partition: [low, high]} from ListOffsets (admin.fetchTopicOffsets).
async function watermarks(admin, topicName) {
  const out = {}
  for (const o of await admin.fetchTopicOffsets(topicName)) out[o.partition] = [Number(o.low), Number(o.high)]
  return out
}

// Consumes every partition of `topicName` from the beginning with a throwaway group
// (nothing committed) until `expectedTotal` records arrived and every partition
// reached its high watermark (plus a short grace period so extra records show
// up), or the timeout. Returns {got: {partition: [message]}, wm}.
async function consumeAll(k, admin, topicName, expectedTotal, { timeout = 120, group } = {}) {
  const consumer = k.consumer({
    groupId: group || topicName + '-reader',
    sessionTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 500,
  })
  const got = {}
  let total = 0
  await consumer.connect()
  await consumer.subscribe({ topics: [topicName], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      ;(got[partition] = got[partition] || []).push(message)
      total++
    },
  })
  const dl = new Deadline(timeout)
  let wm = null
  while (!dl.expired()) {
    if (total >= expectedTotal) {
      wm = wm || (await watermarks(admin, topicName))
      const atEnd = Object.entries(wm).every(([p, [, high]]) => {
        const recs = got[p] || []
        return high === 0 || (recs.length && Number(recs[recs.length - 1].offset) + 1 >= high)
      })
      if (atEnd) {
        await sleep(300)
        break
      }
    }
    await sleep(50)
  }
  if (dl.expired()) log(`consume timed out after ${timeout}s with ${total}/${expectedTotal} records`)
  await within(30, 'consumer.disconnect', consumer.disconnect()).catch(e => log(`consumer disconnect: ${e}`))
  return { got, wm: await watermarks(admin, topicName) }
}

// Waits until Metadata shows `topicName` with n partitions, each with a leader.
async function waitPartitions(admin, topicName, n, timeout = 30) {
  const dl = new Deadline(timeout)
  let seen = 'nothing'
  while (true) {
    try {
      const md = await admin.fetchTopicMetadata({ topics: [topicName] })
      const t = md.topics.find(x => x.name === topicName)
      if (!t) seen = 'topic not in metadata'
      else if (t.partitions.length !== n) seen = `${t.partitions.length} partitions`
      else if (t.partitions.some(p => p.partitionErrorCode !== 0 || p.leader < 0)) seen = `partition error/no leader: ${JSON.stringify(t.partitions)}`
      else return t
    } catch (e) {
      seen = `error ${e}`
    }
    if (dl.expired()) fail(`metadata for ${topicName}: expected ${n} partitions with leaders, last saw: ${seen}`)
    await sleep(300)
  }
}

// configEntries: [{name, value}] topic config overrides.
async function createTopic(admin, topicName, numPartitions, configEntries = []) {
  let created
  try {
    created = await within(30, 'createTopics', admin.createTopics({ topics: [{ topic: topicName, numPartitions, replicationFactor: Number(process.env.STROM_COMPAT_REPLICATION_FACTOR || 1), configEntries }], waitForLeaders: true, timeout: 20000 }))
  } catch (e) {
    fail(`createTopics(${topicName}, ${numPartitions} partitions, configs ${JSON.stringify(configEntries)}) failed: ${e && e.stack ? e.stack : e}`)
  }
  if (created !== true) fail(`createTopics(${topicName}) returned ${created}, expected true (topic is new)`)
  log(`created ${topicName} with ${numPartitions} partitions`)
}

module.exports = {
  EXIT_PASS, EXIT_FAIL, EXIT_UNSUPPORTED, N_MESSAGES,
  log, fail, unsupported, passed, main, atExit, bootstrap, topic, Deadline, sleep, within, waitFor,
  short, equal, firstDiff, rng, autoDataset, keyedDataset, headersDataset,
  LARGE_COUNT, LARGE_VALUE_BYTES, LARGE_MAX_BYTES, largeDataset, checkLarge, COMPRESSION_COUNT, compressionDataset,
  SEEK_COUNT, SEEK_INDEX, seekT0, timestampDataset, seekQueries, IDEMPOTENT_COUNT, IDEMPOTENT_PARTITIONS, idempotentDataset,
  kafka, produceAll, watermarks, consumeAll, waitPartitions, createTopic,
}
