'use strict'
// kafkajs idempotent producer (idempotent: true, acks=-1, maxInFlightRequests: 1 as
// kafkajs documents for EoS): 5,000 keyed records over a 3-partition topic, sent in
// back-to-back send() calls of 250 (kafkajs' send() resolves once the batch is
// acknowledged); every send succeeds, and each partition holds its records exactly
// once, in send order, offsets from 0, high watermark = count.
const c = require('./compat')

c.main(async () => {
  const topic = c.topic()
  const data = c.idempotentDataset()
  const NPART = c.IDEMPOTENT_PARTITIONS
  const k = c.kafka()
  const admin = k.admin()
  await admin.connect()
  await c.createTopic(admin, topic, NPART)
  await c.waitPartitions(admin, topic, NPART)
  const producer = k.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  c.log(`producing ${data.length} records to ${topic}`)
  const reports = await c.produceAll(producer, admin, topic, data.map(([key, value]) => ({ key, value })), { chunk: 250 })
  await producer.disconnect()

  const expected = {}
  for (let q = 0; q < NPART; q++) expected[q] = []
  const keyPart = new Map()
  data.forEach(([key, value], i) => {
    const { partition, offset } = reports[i]
    if (!(partition in expected)) c.fail(`record ${i} sent to partition ${partition}, topic has ${NPART}`)
    const ks = key.toString()
    if (!keyPart.has(ks)) keyPart.set(ks, partition)
    if (keyPart.get(ks) !== partition) c.fail(`key ${ks} sent to partitions ${keyPart.get(ks)} and ${partition}`)
    expected[partition].push([offset, key, value])
  })
  const empty = Object.keys(expected).filter(q => expected[q].length === 0)
  if (empty.length) c.fail(`keys did not spread: partitions ${empty} got no records`)

  const { got, wm } = await c.consumeAll(k, admin, topic, data.length, { timeout: 60 })
  for (let q = 0; q < NPART; q++) {
    const exp = expected[q].map((_, i) => i)
    let d = c.firstDiff(exp, expected[q].map(e => e[0]), 'offset')
    if (d) c.fail(`partition ${q} produce offsets not contiguous from 0: ${d}`)
    d = c.firstDiff(expected[q], (got[q] || []).map(m => [Number(m.offset), m.key, m.value]), `record (offset, key, value) of partition ${q}`)
    if (d) c.fail(d)
    if (!c.equal(wm[q], [0, expected[q].length])) c.fail(`partition ${q} (low, high) offsets: expected [0, ${expected[q].length}], got ${JSON.stringify(wm[q])}`)
  }
  const extra = Object.keys(got).filter(q => !(q in expected))
  if (extra.length) c.fail(`records from unexpected partitions ${extra}`)
  await admin.disconnect()
  c.passed(`${data.length} records, per partition [${Object.values(expected).map(e => e.length).join(', ')}]: exactly once, in send order, high watermark = count`)
})
