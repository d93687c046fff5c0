'use strict'
// kafkajs: records with headers (empty, binary, non-ASCII names, none at all,
// duplicate names) and explicit non-monotonic CreateTime timestamps round-trip
// exactly. No null header values: kafkajs 2.2.4's producer throws a TypeError in
// sizeOfHeaders (Buffer.byteLength(null)) before sending one. kafkajs represents headers as an object {name: value |
// [values]}: duplicate names are sent grouped (all values of a name together, in
// order, names in first-appearance order), so interleaved duplicates ("dup, dup,
// other, dup") cannot be expressed; the expected headers are that grouped form.
const c = require('./compat')

// [[name, value]] -> kafkajs headers object (values of a repeated name in an array).
function toObject(headers) {
  const o = {}
  for (const [n, v] of headers) {
    if (!(n in o)) o[n] = v
    else if (Array.isArray(o[n])) o[n].push(v)
    else o[n] = [o[n], v]
  }
  return o
}
// kafkajs headers object -> [[name, value]] in the object's order.
function toList(o) {
  const out = []
  for (const n of Object.keys(o || {})) for (const v of Array.isArray(o[n]) ? o[n] : [o[n]]) out.push([n, v])
  return out
}

c.main(async () => {
  const topic = c.topic()
  const recs = c.headersDataset(300, false)
  const k = c.kafka()
  const admin = k.admin()
  await admin.connect()
  const producer = k.producer()
  await producer.connect()
  c.log(`producing ${recs.length} records with headers/timestamps to ${topic} (partition 0)`)
  await c.produceAll(producer, admin, topic, recs.map(r => ({ key: r.key, value: r.value, headers: toObject(r.headers), timestamp: String(r.ts), partition: 0 })))
  await producer.disconnect()
  await c.waitPartitions(admin, topic, 1)

  const { got } = await c.consumeAll(k, admin, topic, recs.length)
  const expected = recs.map(r => [r.key, r.value, String(r.ts), toList(toObject(r.headers))])
  const consumed = []
  for (const m of got[0] || []) {
    const tt = m.batchContext && m.batchContext.timestampType
    if (tt !== 0) c.fail(`offset ${m.offset}: timestamp type ${tt}, expected 0 (CreateTime)`)
    consumed.push([m.key, m.value, m.timestamp, toList(m.headers)])
  }
  const d = c.firstDiff(expected, consumed, 'record (key, value, timestamp, headers)')
  if (d) c.fail(d)
  await admin.disconnect()
  c.passed(`${recs.length} records: headers and CreateTime timestamps identical`)
})
