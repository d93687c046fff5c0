'use strict'
// kafkajs admin: create a topic with config overrides (configEntries), describe its
// configs (value + DYNAMIC_TOPIC_CONFIG source, a default) and the broker's
// (DescribeConfigs ≤ v2, the newest non-flexible version), describe the cluster
// (kafkajs answers describeCluster from Metadata), refuse an unknown config with
// INVALID_CONFIG, delete the topic, and create it again (from offset 0).
const { ConfigResourceTypes, ConfigSource } = require('kafkajs')
const c = require('./compat')

function configs(res, type, name) {
  const r = (res.resources || []).find(x => x.resourceType === type && x.resourceName === name)
  if (!r) c.fail(`describeConfigs returned no resource ${type} ${name}: ${JSON.stringify(res)}`)
  if (r.errorCode) c.fail(`describeConfigs(${name}): error ${r.errorCode} ${r.errorMessage}`)
  return Object.fromEntries(r.configEntries.map(e => [e.configName, [e.configValue, e.configSource]]))
}

c.main(async () => {
  const topic = c.topic('-admin')
  const k = c.kafka()
  const admin = k.admin()
  await admin.connect()
  c.log(`creating ${topic} with segment.bytes=1048576, retention.ms=3600000`)
  const ok = await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: Number(process.env.STROM_COMPAT_REPLICATION_FACTOR || 1), configEntries: [{ name: 'segment.bytes', value: '1048576' }, { name: 'retention.ms', value: '3600000' }] }] })
  if (ok !== true) c.fail(`createTopics(${topic}) returned ${ok}`)
  await c.waitPartitions(admin, topic, 2)

  const cfg = configs(await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false }), ConfigResourceTypes.TOPIC, topic)
  if (!c.equal(cfg['segment.bytes'], ['1048576', ConfigSource.TOPIC_CONFIG])) c.fail(`describeConfigs(topic): segment.bytes [value, source] = ${JSON.stringify(cfg['segment.bytes'])}, expected ['1048576', DYNAMIC_TOPIC_CONFIG=1]`)
  if (!cfg['retention.ms'] || cfg['retention.ms'][0] !== '3600000') c.fail(`describeConfigs(topic): retention.ms = ${JSON.stringify(cfg['retention.ms'])}`)
  if (!c.equal(cfg['cleanup.policy'], ['delete', ConfigSource.DEFAULT_CONFIG])) c.fail(`describeConfigs(topic): cleanup.policy = ${JSON.stringify(cfg['cleanup.policy'])}, expected ['delete', DEFAULT_CONFIG=5]`)

  const cluster = await admin.describeCluster()
  if (!cluster.brokers.length) c.fail(`describeCluster() lists no brokers: ${JSON.stringify(cluster)}`)
  const bid = String(cluster.brokers[0].nodeId)
  const bcfg = configs(await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.BROKER, name: bid }], includeSynonyms: false }), ConfigResourceTypes.BROKER, bid)
  if (!bcfg['num.partitions'] || bcfg['num.partitions'][0] !== '1') c.fail(`describeConfigs(broker ${bid}): num.partitions = ${JSON.stringify(bcfg['num.partitions'])}, expected '1'`)

  const bad = c.topic('-badcfg')
  let badErr = null
  try {
    await admin.createTopics({ topics: [{ topic: bad, numPartitions: 1, configEntries: [{ name: 'no.such.config', value: '1' }] }] })
  } catch (e) {
    badErr = e
  }
  // kafkajs throws a KafkaJSAggregateError holding one KafkaJSCreateTopicError per topic.
  const types = badErr ? (badErr.errors || [badErr]).map(e => e.type) : []
  if (!c.equal(types, ['INVALID_CONFIG'])) c.fail(`creating a topic with an unknown config: expected INVALID_CONFIG, got ${badErr ? `${badErr.name}: ${badErr.message} ${JSON.stringify(types)}` : 'success'}`)

  c.log(`deleting ${topic}`)
  await admin.deleteTopics({ topics: [topic], timeout: 20000 })
  if ((await admin.listTopics()).includes(topic)) c.fail(`deleted topic ${topic} is still listed`)
  if ((await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })) !== true) c.fail(`re-creating ${topic} did not report a new topic`)
  await c.waitPartitions(admin, topic, 1)
  const producer = k.producer()
  await producer.connect()
  const reports = await c.produceAll(producer, admin, topic, [{ key: Buffer.from('k'), value: Buffer.from('fresh') }])
  await producer.disconnect()
  await admin.disconnect()
  if (!c.equal(reports.map(r => [r.partition, r.offset]), [[0, 0]])) c.fail(`re-created topic should start at offset 0, got ${JSON.stringify(reports)}`)
  c.passed(`configs described (topic + broker ${bid}), unknown config refused, delete + re-create ok`)
})
