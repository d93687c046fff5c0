// kafkajs and gzip, its one built-in codec, against every other client: kafkajs
// produces gzip batches that confluent-kafka, kafka-python and aiokafka must read back
// byte-identical, and kafkajs must read back byte-identical the gzip batches each of
// them produces (cross/gzip_peer.py is the Python side). Other codecs need kafkajs
// plugins, so they are not part of this scenario.
const { execFileSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { CompressionTypes } = require('kafkajs')
const c = require('./compat')

const N = 300

function dataset(seed) {
  const r = c.rng(seed)
  const out = []
  for (let i = 0; i < N; i++) {
    const key = i % 7 === 0 ? null : r.bytes(r.int(0, 20))
    // kafka-python refuses records with neither key nor value.
    const value = i % 11 === 0 && key !== null ? null : r.bytes(r.int(0, 200))
    const headers = i % 3 === 0 ? [] : [[`h${i % 5}`, r.bytes(r.int(0, 10))]]
    out.push({ key, value, headers })
  }
  return out
}

const hex = b => (b === null ? null : b.toString('hex'))

c.main(async () => {
  const recs = dataset(77)
  const file = path.join(os.tmpdir(), `kafkajs-gzip-${process.pid}.json`)
  fs.writeFileSync(file, JSON.stringify(recs.map(m => [hex(m.key), hex(m.value), m.headers.map(([n, v]) => [n, hex(v)])])))
  c.atExit(() => fs.rmSync(file, { force: true }))
  const k = c.kafka()
  const admin = k.admin()
  await admin.connect()
  const mine = c.topic('-kafkajs-gzip')
  const prefix = c.topic('-peer')
  const peers = ['confluent', 'kafka-python', 'aiokafka']
  await c.createTopic(admin, mine, 1)
  for (const p of peers) await c.createTopic(admin, `${prefix}-${p}`, 1)
  const producer = k.producer()
  await producer.connect()
  await producer.send({
    topic: mine,
    compression: CompressionTypes.GZIP,
    messages: recs.map(m => ({
      key: m.key,
      value: m.value,
      partition: 0,
      headers: Object.fromEntries(m.headers),
    })),
  })
  await producer.disconnect()
  const py = path.join(__dirname, '..', '.venv', 'bin', 'python')
  const peer = path.join(__dirname, '..', 'cross', 'gzip_peer.py')
  const env = { ...process.env, PYTHONPATH: path.join(__dirname, '..', 'lib') }
  const run = args => {
    try {
      return execFileSync(py, [peer, ...args], { env, encoding: 'utf8', timeout: 240000 })
    } catch (e) {
      c.fail(`python peer ${args[0]} failed: ${(e.stdout || '') + (e.stderr || '')}`)
    }
  }
  c.log(run(['check', mine, file]).trim())
  c.log(run(['produce', prefix, file]).trim())
  for (const p of peers) {
    const { got } = await c.consumeAll(k, admin, `${prefix}-${p}`, N)
    const msgs = got[0] || []
    const norm = m => [
      m.key === null ? null : hex(m.key),
      m.value === null ? null : hex(m.value),
      Object.entries(m.headers || {}).map(([n, v]) => [n, hex(v)]),
    ]
    const want = recs.map(m => [hex(m.key), hex(m.value), m.headers.map(([n, v]) => [n, hex(v)])])
    const have = msgs.map(norm)
    const d = c.firstDiff(want, have)
    if (d) c.fail(`kafkajs reading gzip from ${p}: ${d}`)
  }
  await admin.disconnect()
  c.passed(`gzip: kafkajs → confluent-kafka, kafka-python, aiokafka and back, ${N} records each, byte-identical`)
})
