'use strict'
// kafkajs admin: createPartitions (1 → 3; shrinking to 2 refused with
// INVALID_PARTITIONS), alterConfigs (retention.ms persisted, describeConfigs shows it as
// DYNAMIC_TOPIC_CONFIG), deleteTopicRecords (low watermark 6, high still 10; a consumer
// from the beginning reads 6..9).
const { ConfigResourceTypes, ConfigSource } = require('kafkajs')
const c = require('./compat')

// The protocol error type of a kafkajs admin error (possibly wrapped by its retrier).
function errorType(e) {
  for (let x = e; x; x = x.cause || x.originalError) if (x.type) return x.type
  return e && (e.errors || []).map(errorType).find(t => t)
}

c.main(async () => {
  const topic = c.topic('-ops')
  const k = c.kafka()
  const admin = k.admin()
  await admin.connect()
  await c.createTopic(admin, topic, 1)
  await c.waitPartitions(admin, topic, 1)
  const producer = k.producer()
  await producer.connect()
  await c.produceAll(producer, admin, topic, [...Array(10).keys()].map(i => ({ key: null, value: Buffer.from(`v${i}`), partition: 0 })))
  await producer.disconnect()

  await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] })
  await c.waitPartitions(admin, topic, 3)
  let shrinkErr = null
  try {
    await admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] })
  } catch (e) {
    shrinkErr = e
  }
  if (!shrinkErr) c.fail('shrinking to 2 partitions succeeded')
  if (errorType(shrinkErr) !== 'INVALID_PARTITIONS') c.fail(`shrinking to 2 partitions: expected INVALID_PARTITIONS, got ${shrinkErr.name}: ${shrinkErr.message} (type ${errorType(shrinkErr)})`)

  const altered = await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '1000' }] }] })
  const bad = (altered.resources || []).filter(r => r.errorCode)
  if (bad.length) c.fail(`alterConfigs(retention.ms=1000): ${JSON.stringify(bad)}`)
  const described = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false })
  const entry = described.resources[0].configEntries.find(e => e.configName === 'retention.ms')
  if (!entry || entry.configValue !== '1000' || entry.configSource !== ConfigSource.TOPIC_CONFIG) {
    c.fail(`after alterConfigs retention.ms is ${JSON.stringify(entry)}, expected '1000' from DYNAMIC_TOPIC_CONFIG (1)`)
  }

  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '6' }] })
  const wm = await c.watermarks(admin, topic)
  if (!c.equal(wm[0], [6, 10])) c.fail(`after deleteTopicRecords partition 0 (low, high) is ${JSON.stringify(wm[0])}, expected [6, 10]`)
  const { got } = await c.consumeAll(k, admin, topic, 4, { timeout: 60 })
  const offsets = (got[0] || []).map(m => Number(m.offset))
  const d = c.firstDiff([6, 7, 8, 9], offsets, 'offset')
  if (d) c.fail(`reading partition 0 from the beginning after deleteTopicRecords: ${d}`)
  await admin.disconnect()
  c.passed('createPartitions 1→3 (shrink refused: INVALID_PARTITIONS), alterConfigs retention.ms (DYNAMIC_TOPIC_CONFIG), deleteTopicRecords (offsets 6..10)')
})
