'use strict'
// kafkajs transactions (KIP-98): producer({ transactionalId, idempotent: true,
// maxInFlightRequests: 1 }) as kafkajs documents, producer.transaction().
//
// 1. topic $COMPAT_TOPIC with 2 partitions (+ `-out` with 2 and `-fence` with 1).
// 2. One producer (transactionalId unique per run); kafkajs has no initTransactions():
//    its first transaction() sends InitProducerId. A: 20 records committed, B: 15
//    aborted, C: 10 committed (record i to partition i % 2, value "A-i").
// 3. A read_committed consumer (the default; kafkajs has no assign(): a fresh group,
//    fromBeginning): exactly A and C, each once, at Kafka's offsets (one marker offset
//    after each transaction), in order.
// 4. readUncommitted: true: all 45 records of A, B and C; no control record delivered;
//    end offsets = records + 3 markers per partition.
// 5. Consume-transform-produce: D (committed) writes A's records transformed to `-out`
//    and transaction.sendOffsets({ consumerGroupId: G, topics }): admin.fetchOffsets
//    for G shows them; E (aborted) does the same for C's records with later offsets:
//    `-out` (read_committed) holds only D's records, G's offsets did not move.
// 6. Zombie fencing: P1 (transactionalId T) begins and sends; P2 with T starts a
//    transaction (InitProducerId); P1's next send/commit fails with PRODUCER_FENCED or
//    INVALID_PRODUCER_EPOCH; read_committed sees only P2's committed records.
//
// A read ends deterministically: every partition's consumed position (lastOffset + 1
// of the batches kafkajs reports in END_BATCH_PROCESS, control batches included)
// reached the end offset taken at the start, then one more complete fetch (two more
// FETCH_STARTs: kafkajs processes a fetch's batches before starting the next).
const c = require('./compat')

const NPART = 2
const PLAN = [['A', 20, true], ['B', 15, false], ['C', 10, true]]
const ZOMBIE = 5
const SUCCESSOR = 5
const TXN_TIMEOUT = 30
const READ_TIMEOUT = 60
const FENCED = new Set(['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH'])

// [{partition, key, value}]: record i of transaction `name` to partition i % 2.
function txnRecords(name, n) {
  const out = []
  for (let i = 0; i < n; i++) out.push({ partition: i % NPART, key: Buffer.from(`key-${name}-${i}`), value: Buffer.from(`${name}-${i}`) })
  return out
}
function fenceRecords(name, n, start = 0) {
  const out = []
  for (let i = start; i < start + n; i++) out.push({ partition: 0, key: Buffer.from(`key-${name}-${i}`), value: Buffer.from(`${name}-${i}`) })
  return out
}

// Kafka's layout after PLAN: each transaction's records of a partition take consecutive
// offsets, then its COMMIT/ABORT marker takes one (every partition is in every transaction).
function layout() {
  const recs = {}
  const markers = {}
  const end = {}
  for (let q = 0; q < NPART; q++) {
    recs[q] = []
    markers[q] = new Set()
    end[q] = 0
  }
  for (const [name, n, committed] of PLAN) {
    for (const r of txnRecords(name, n)) recs[r.partition].push([end[r.partition]++, r.key, r.value, committed])
    for (let q = 0; q < NPART; q++) markers[q].add(end[q]++)
  }
  return { recs, markers, end }
}

// got: {partition: [[offset, key, value]]}.
function checkTxnRead(got, committedOnly, what, ends = null) {
  const { recs, markers, end } = layout()
  for (const [q, list] of Object.entries(got)) {
    if (!(q in recs)) c.fail(`${what}: records from unexpected partition ${q}`)
    for (const [off, k, v] of list) {
      if (markers[q].has(off)) c.fail(`${what}: control record delivered to the application: partition ${q} offset ${off}, key ${c.short(k)}, value ${c.short(v)}`)
      if (committedOnly && v && v.toString().startsWith('B-')) c.fail(`${what}: record ${v} of the aborted transaction B delivered (partition ${q} offset ${off})`)
    }
  }
  let total = 0
  for (let q = 0; q < NPART; q++) {
    const want = recs[q].filter(r => r[3] || !committedOnly).map(([o, k, v]) => [o, k, v])
    const d = c.firstDiff(want, got[q] || [], `${what} partition ${q} record`)
    if (d) c.fail(d)
    total += want.length
    if (ends && ends[q] !== end[q]) c.fail(`${what}: partition ${q} end offset: expected ${end[q]} (${recs[q].length} records + ${markers[q].size} markers), got ${ends[q]}`)
  }
  return total
}

// Errors kafkajs wraps (retries exceeded, non-retriable): every `type` in the chain.
function errorTypes(e, depth = 0) {
  if (!e || depth > 6) return []
  const out = e.type ? [e.type] : []
  for (const inner of [e.cause, e.originalError]) out.push(...errorTypes(inner, depth + 1))
  if (Array.isArray(e.errors)) for (const inner of e.errors) out.push(...errorTypes(inner, depth + 1))
  return out
}
const describe = e => `${e && e.name}: ${e && e.message} [types ${JSON.stringify(errorTypes(e))}]`

async function txnProducer(k, tid) {
  const p = k.producer({ transactionalId: tid, idempotent: true, maxInFlightRequests: 1 })
  await c.within(TXN_TIMEOUT, 'producer.connect', p.connect())
  return p
}

async function call(what, promise) {
  try {
    return await c.within(TXN_TIMEOUT, what, promise)
  } catch (e) {
    c.fail(`${what} failed: ${describe(e)}`)
  }
}

async function send(txn, topic, recs, what) {
  const res = await call(`${what}: send`, txn.send({ topic, messages: recs }))
  for (const r of res) if (r.errorCode !== 0) c.fail(`${what}: partition ${r.partition} error code ${r.errorCode}`)
}

async function runTxn(p, topic, name, n, commit) {
  const txn = await call(`transaction() (${name})`, p.transaction())
  await send(txn, topic, txnRecords(name, n), `transaction ${name}`)
  if (commit) await call(`commit (${name})`, txn.commit())
  else await call(`abort (${name})`, txn.abort())
  c.log(`transaction ${name}: ${n} records, ${commit ? 'committed' : 'aborted'}`)
}

// Reads `topic` from the beginning with a fresh group; see the header for the end condition.
// Returns {got: {partition: [[offset, key, value]]}, ends: {partition: end offset}}.
async function readAll(k, admin, topic, npart, readUncommitted, timeout = READ_TIMEOUT) {
  const iso = readUncommitted ? 'read_uncommitted' : 'read_committed'
  const wm = await c.within(30, 'fetchTopicOffsets', c.watermarks(admin, topic))
  const ends = {}
  for (let q = 0; q < npart; q++) ends[q] = wm[q][1]
  const consumer = k.consumer({ groupId: `${topic}-${iso}-reader`, readUncommitted, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500 })
  const got = {}
  const pos = {}
  let fetchStarts = 0
  let crash = null
  consumer.on(consumer.events.END_BATCH_PROCESS, e => {
    const next = Number(e.payload.lastOffset) + 1
    if (!(pos[e.payload.partition] >= next)) pos[e.payload.partition] = next
  })
  consumer.on(consumer.events.FETCH_START, () => fetchStarts++)
  consumer.on(consumer.events.CRASH, e => {
    crash = e.payload.error
  })
  await c.within(30, 'consumer.connect', consumer.connect())
  await c.within(30, 'consumer.subscribe', consumer.subscribe({ topics: [topic], fromBeginning: true }))
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      ;(got[partition] = got[partition] || []).push([Number(message.offset), message.key, message.value])
    },
  })
  const counts = () => JSON.stringify(Object.fromEntries(Object.entries(got).map(([q, l]) => [q, l.length])))
  await c.waitFor(() => {
    if (crash) c.fail(`${iso} consumer crashed: ${describe(crash)}`)
    return Object.keys(ends).every(q => pos[q] >= ends[q])
  }, timeout, () => `${iso} read of ${topic} to the end: ${counts()} records, positions ${JSON.stringify(pos)}, end offsets ${JSON.stringify(ends)}`)
  const mark = fetchStarts
  await c.waitFor(() => fetchStarts >= mark + 2, 15, `${iso} consumer: one more fetch after the end`)
  await c.within(30, 'consumer.disconnect', consumer.disconnect()).catch(e => c.log(`consumer disconnect: ${e}`))
  return { got, ends }
}

async function committedOffsets(admin, group, topic) {
  let fetched
  try {
    fetched = await c.within(15, 'fetchOffsets', admin.fetchOffsets({ groupId: group, topics: [topic] }))
  } catch (e) {
    c.fail(`fetchOffsets for group ${group}: ${describe(e)}`)
  }
  const t = fetched.find(x => x.topic === topic)
  return Object.fromEntries((t ? t.partitions : []).map(p => [p.partition, Number(p.offset)]))
}

c.main(async () => {
  const topic = c.topic()
  const outTopic = topic + '-out'
  const fenceTopic = topic + '-fence'
  const k = c.kafka()
  const admin = k.admin()
  await c.within(30, 'admin.connect', admin.connect())
  for (const [t, n] of [[topic, NPART], [outTopic, NPART], [fenceTopic, 1]]) {
    await c.createTopic(admin, t, n)
    await c.waitPartitions(admin, t, n)
  }

  // 2. A committed, B aborted, C committed.
  const tid = topic + '-txn'
  const p = await txnProducer(k, tid)
  c.log(`producer connected (transactionalId ${tid}); the first transaction() initialises it`)
  for (const [name, n, commit] of PLAN) await runTxn(p, topic, name, n, commit)

  // 3. read_committed.
  const rc = await readAll(k, admin, topic, NPART, false)
  const nRc = checkTxnRead(rc.got, true, 'read_committed')
  c.log(`read_committed: ${nRc} records of A and C, none of B, in order`)

  // 4. read_uncommitted.
  const ru = await readAll(k, admin, topic, NPART, true)
  const nRu = checkTxnRead(ru.got, false, 'read_uncommitted', ru.ends)
  c.log(`read_uncommitted: all ${nRu} records, no control record; end offsets ${JSON.stringify(ru.ends)}`)

  // 5. consume-transform-produce with the group's offsets in the transaction.
  const group = topic + '-G'
  const stage = (tag, src) => {
    const out = []
    const offsets = {}
    for (let q = 0; q < NPART; q++) {
      for (const [off, key, value] of rc.got[q] || []) {
        if (!value.toString().startsWith(src)) continue
        out.push({ partition: q, key, value: Buffer.concat([Buffer.from(tag), value]) })
        offsets[q] = off + 1
      }
      if (offsets[q] === undefined) c.fail(`consume-transform-produce: no ${src} records read from partition ${q}`)
    }
    return { out, offsets }
  }
  const D = stage('D:', 'A-')
  const E = stage('E:', 'C-')
  const sendOffsets = (txn, offsets) =>
    txn.sendOffsets({ consumerGroupId: group, topics: [{ topic, partitions: Object.entries(offsets).map(([q, o]) => ({ partition: Number(q), offset: String(o) })) }] })
  c.log(`group ${group} committed offsets before: ${JSON.stringify(await committedOffsets(admin, group, topic))}`)

  const txnD = await call('transaction() (D)', p.transaction())
  await send(txnD, outTopic, D.out, 'transaction D')
  await call('sendOffsets (D)', sendOffsets(txnD, D.offsets))
  await call('commit (D)', txnD.commit())
  let now = null
  await c.waitFor(async () => {
    now = await committedOffsets(admin, group, topic)
    return c.equal(Object.keys(D.offsets).map(q => now[q]), Object.values(D.offsets))
  }, 15, () => `group ${group} committed offsets after committing D: expected ${JSON.stringify(D.offsets)}, got ${JSON.stringify(now)}`)
  c.log(`transaction D committed: ${D.out.length} records to ${outTopic}, group offsets ${JSON.stringify(now)} visible`)

  const txnE = await call('transaction() (E)', p.transaction())
  await send(txnE, outTopic, E.out, 'transaction E')
  await call('sendOffsets (E)', sendOffsets(txnE, E.offsets))
  await call('abort (E)', txnE.abort())
  // Reading -out to its end with read_committed waits until E's abort markers are in.
  const out = await readAll(k, admin, outTopic, NPART, false)
  for (let q = 0; q < NPART; q++) {
    const want = D.out.filter(r => r.partition === q).map((r, i) => [i, r.key, r.value])
    const d = c.firstDiff(want, out.got[q] || [], `read_committed ${outTopic} partition ${q} record`)
    if (d) c.fail(d)
  }
  now = await committedOffsets(admin, group, topic)
  if (!c.equal(Object.keys(D.offsets).map(q => now[q]), Object.values(D.offsets))) {
    c.fail(`after aborting E (offsets ${JSON.stringify(E.offsets)}), group ${group} committed offsets: expected ${JSON.stringify(D.offsets)} (D's), got ${JSON.stringify(now)}`)
  }
  c.log(`transaction E aborted: ${outTopic} holds only D's ${D.out.length} records, group offsets still ${JSON.stringify(now)}`)

  // 6. zombie fencing.
  const zid = topic + '-zombie'
  const p1 = await txnProducer(k, zid)
  const t1 = await call('P1 transaction()', p1.transaction())
  await send(t1, fenceTopic, fenceRecords('Z', ZOMBIE), 'P1 (before fencing)')
  c.log(`P1: transaction open, ${ZOMBIE} records written`)
  const p2 = await txnProducer(k, zid)
  const t2 = await call('P2 transaction()', p2.transaction())
  c.log('P2: transaction() with the same transactionalId done (InitProducerId)')
  const seen = []
  try {
    await c.within(TXN_TIMEOUT, 'P1 send', t1.send({ topic: fenceTopic, messages: fenceRecords('Z', 1, ZOMBIE) }))
  } catch (e) {
    seen.push(['send', e])
  }
  let p1Committed = false
  try {
    await c.within(TXN_TIMEOUT, 'P1 commit', t1.commit())
    p1Committed = true
  } catch (e) {
    seen.push(['commit', e])
  }
  c.log(`P1 errors: ${seen.map(([w, e]) => `${w}: ${describe(e)}`).join('; ')}`)
  if (p1Committed) c.fail(`P1 commit() succeeded after P2 fenced it (earlier errors: ${seen.map(([w, e]) => `${w}: ${describe(e)}`).join('; ')})`)
  const fencedBy = seen.filter(([, e]) => errorTypes(e).some(t => FENCED.has(t))).map(([w]) => w)
  if (!fencedBy.length) c.fail('P1 saw no PRODUCER_FENCED / INVALID_PRODUCER_EPOCH error')
  await send(t2, fenceTopic, fenceRecords('P2', SUCCESSOR), 'P2')
  await call('P2 commit', t2.commit())
  const fence = await readAll(k, admin, fenceTopic, 1, false)
  const gotF = (fence.got[0] || []).map(([, key, value]) => [key, value])
  const zombie = gotF.filter(([, v]) => v.toString().startsWith('Z-'))
  if (zombie.length) c.fail(`read_committed ${fenceTopic}: ${zombie.length} record(s) of the fenced producer P1 delivered, first ${zombie[0][1]}`)
  const d = c.firstDiff(fenceRecords('P2', SUCCESSOR).map(r => [r.key, r.value]), gotF, `read_committed ${fenceTopic} record`)
  if (d) c.fail(d)
  c.log(`fencing: P1 fenced, read_committed sees only P2's ${SUCCESSOR} records`)

  await admin.disconnect()
  c.passed(`A/B/C: read_committed ${nRc} records, read_uncommitted ${nRu}, no markers; offsets in D committed ${JSON.stringify(D.offsets)}, E aborted; zombie fenced (${fencedBy.join(', ')})`)
})
