'use strict'
// kafkajs steps shared by the security scenarios (issue 16): security.js (SASL/PLAIN on
// SASL_PLAINTEXT), security-ssl.js (mTLS on SSL), security-sasl-ssl.js (SASL/PLAIN on
// SASL_SSL), security-scram.js (SCRAM-SHA-256/512) and security-oauthbearer.js
// (OAUTHBEARER, unsecured JWTs). Each takes a Kafka instance (c.kafka() with the `ssl`/`sasl` settings of
// whoever acts). The records are those of lib/compat.py's security_records().
//
// - aliceSteps(): admin.createTopics (2 partitions), 20 records (record i to partition
//   i % 2, key sec-<ii>, value alice-<ii>); a group member (subscribe, fromBeginning)
//   reads them and commits {0: 6, 1: 4} with metadata (commitOffsets); admin.fetchOffsets
//   reads the commit back.
// - refusedLogin(): producer.connect() rejects within 20 s with
//   KafkaJSSASLAuthenticationError (anywhere in the cause chain); nothing is sent;
//   optionally the broker logged the refusal with a given reason.
// - refusedConnection(): producer.connect() rejects within 20 s (connections refused at
//   TLS level, by the broker or by the client itself), and the broker logged the refusal.
// - finalRead(): alice reads the topic again (a fresh group): exactly her 20 records at
//   offsets 0..9 per partition.
const c = require('./compat')

const AUTH_WAIT = 20 // seconds for a refused client's error to surface
const COUNT = 20
const NPART = 2
const INTRUDER = 5
const COMMIT = { 0: 6, 1: 4 }
const COMMIT_METADATA = 'sasl-alice'
const pad2 = i => String(i).padStart(2, '0')

// [[partition, key, value]], as compat.security_records().
const records = [...Array(COUNT).keys()].map(i => [i % NPART, Buffer.from(`sec-${pad2(i)}`), Buffer.from(`alice-${pad2(i)}`)])

// got: {partition: [message]} read from the beginning: exactly alice's records, per
// partition in produce order at offsets 0.. (nothing of a refused client).
function checkLog(got, what) {
  for (const [p, msgs] of Object.entries(got)) {
    const bad = msgs.find(m => !m.value || !m.value.toString().startsWith('alice-'))
    if (bad) c.fail(`${what}: a record not produced by alice at partition ${p} offset ${bad.offset}: ${c.short(bad.value)}`)
    if (Number(p) >= NPART) c.fail(`${what}: records from unexpected partition ${p}`)
  }
  for (let q = 0; q < NPART; q++) {
    const want = records.filter(([p]) => p === q).map(([, k, v], i) => [i, k, v])
    const have = (got[q] || []).map(m => [Number(m.offset), m.key, m.value])
    const d = c.firstDiff(want, have, `${what} partition ${q} record`)
    if (d) c.fail(d)
  }
}

function causes(e) {
  const out = []
  for (let x = e; x && out.length < 6; x = x.cause || x.originalError) out.push(x)
  return out
}

const describe = chain => chain.map(x => `${x.name}: ${x.message}`).join(' <- ')

// alice (Kafka instance `alice`, her connected `admin`): CreateTopics, produce, a group
// member reads and commits, the commit read back.
async function aliceSteps(alice, admin, topic, group) {
  await c.createTopic(admin, topic, NPART)
  await c.waitPartitions(admin, topic, NPART)
  const producer = alice.producer()
  await c.within(30, 'alice producer.connect', producer.connect())
  const reports = await c.produceAll(producer, admin, topic, records.map(([partition, key, value]) => ({ key, value, partition })))
  await producer.disconnect()
  const seen = {}
  reports.forEach((r, i) => {
    const q = records[i][0]
    const want = seen[q] || 0
    seen[q] = want + 1
    if (r.partition !== q || r.offset !== want) c.fail(`alice's record ${i}: delivered to ${r.partition}@${r.offset}, expected ${q}@${want}`)
  })
  c.log(`alice produced ${reports.length} records`)

  // A group member reads them (subscribe, fromBeginning), then commits COMMIT.
  const consumer = alice.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500 })
  const got = {}
  let total = 0
  await c.within(30, 'group member connect', consumer.connect())
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      ;(got[partition] = got[partition] || []).push(message)
      total++
    },
  })
  await c.waitFor(() => total >= COUNT, 60, () => `the group member to read ${COUNT} records (got ${total})`)
  await c.sleep(500) // anything beyond the 20 would show up now
  checkLog(got, 'group member')
  const offsets = Object.entries(COMMIT).map(([q, o]) => ({ topic, partition: Number(q), offset: String(o), metadata: COMMIT_METADATA }))
  try {
    await c.within(30, 'commitOffsets', consumer.commitOffsets(offsets))
  } catch (e) {
    c.fail(`group member: commitOffsets ${JSON.stringify(COMMIT)} failed: ${e && e.stack ? e.stack : e}`)
  }
  await c.within(30, 'group member disconnect', consumer.disconnect())
  const fetched = await c.within(30, 'fetchOffsets', admin.fetchOffsets({ groupId: group, topics: [topic] }))
  const parts = (fetched.find(t => t.topic === topic) || { partitions: [] }).partitions
  const back = {}
  for (const p of parts) back[p.partition] = [Number(p.offset), p.metadata]
  const wantBack = {}
  for (const [q, o] of Object.entries(COMMIT)) wantBack[q] = [o, COMMIT_METADATA]
  if (JSON.stringify(back) !== JSON.stringify(wantBack)) c.fail(`group ${group}: committed offsets read back ${JSON.stringify(back)}, expected ${JSON.stringify(wantBack)}`)
  c.log(`group ${group}: committed ${JSON.stringify(back)} read back`)
}

// A producer of Kafka instance `k` (few retries) must not connect within AUTH_WAIT: returns
// [cause chain, seconds]. Should it connect, its records are sent and the scenario fails.
async function connectFails(label, who, k, topic) {
  const p = k.producer()
  const t0 = Date.now()
  let err = null
  try {
    await c.within(AUTH_WAIT, `${label}: producer.connect`, p.connect())
  } catch (e) {
    err = e
  }
  const secs = (Date.now() - t0) / 1000
  if (err === null) {
    let sent
    try {
      sent = JSON.stringify(await c.within(15, 'send', p.send({ topic, messages: [...Array(INTRUDER).keys()].map(i => ({ key: `intruder-${i}`, value: `${who}-${i}`, partition: i % NPART })) })))
    } catch (e) {
      sent = String(e)
    }
    await p.disconnect().catch(() => {})
    c.fail(`${label} (${who}): producer.connect() succeeded; its send: ${sent}`)
  }
  await p.disconnect().catch(() => {})
  const chain = causes(err)
  c.log(`${label} (${who}): connect() rejected after ${secs.toFixed(1)}s: ${describe(chain)}`)
  return [chain, secs]
}

// Refused login: connect() must reject with KafkaJSSASLAuthenticationError. With `own`
// and `reason`, the broker must also have logged the refused login with that reason
// (OwnBroker.expectAuthRefusal()).
async function refusedLogin(label, user, k, topic, own = null, reason = null) {
  const mark = own ? own.logMark() : 0
  const [chain, secs] = await connectFails(label, user, k, topic)
  const auth = chain.find(x => x.name === 'KafkaJSSASLAuthenticationError')
  if (!auth) c.fail(`${label} (${user}): connect() rejected without KafkaJSSASLAuthenticationError: ${describe(chain)}`)
  const broker = own && reason ? `; broker: ${await own.expectAuthRefusal(mark, reason, `${label} (${user})`)}` : ''
  return `KafkaJSSASLAuthenticationError after ${secs.toFixed(1)}s (${auth.message})${broker}`
}

// Refused at TLS level: connect() rejects and the broker logged a TLS refusal meanwhile.
async function refusedConnection(label, who, k, topic, own) {
  const mark = own.logMark()
  const [chain, secs] = await connectFails(label, who, k, topic)
  const broker = await own.tlsRefusals(mark)
  if (!broker.length) c.fail(`${label} (${who}): the broker logged no TLS refusal ("TLS handshake failed"); client: ${describe(chain)}`)
  c.log(`${label} (${who}): broker: ${broker.length} TLS refusal(s), first: ${broker[0]}`)
  const last = chain[chain.length - 1]
  return `${chain[0].name} after ${secs.toFixed(1)}s (${last.name}: ${String(last.message).slice(0, 160)}); broker: ${broker[0]}`
}

// alice reads the whole topic again (a fresh group): exactly her records, watermarks 0..10.
async function finalRead(alice, admin, topic) {
  const { got, wm } = await c.consumeAll(alice, admin, topic, COUNT, { timeout: 60, group: c.topic('-reader') })
  checkLog(got, "alice's read after the refused clients")
  for (let q = 0; q < NPART; q++) {
    if (!wm[q] || wm[q][0] !== 0 || wm[q][1] !== COUNT / NPART) c.fail(`watermarks ${JSON.stringify(wm)}, expected [0, ${COUNT / NPART}] for every partition`)
  }
}

// Few quick retries for clients that must be refused (kafkajs retries connections).
const REFUSED_RETRY = { retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 } }

module.exports = { COUNT, COMMIT, NPART, REFUSED_RETRY, aliceSteps, refusedLogin, refusedConnection, finalRead, checkLog }
