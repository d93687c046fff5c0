'use strict'
// kafkajs: a topic created with 3 partitions is listed by admin.listTopics() and
// described (fetchTopicMetadata) with 3 partitions, each led by a broker that
// describeCluster() lists; an auto-created topic shows 1 partition.
const c = require('./compat')

c.main(async () => {
  const topic = c.topic('-created')
  const autoTopic = c.topic('-auto')
  const k = c.kafka()
  const admin = k.admin()
  await admin.connect()
  await c.createTopic(admin, topic, 3)
  const t = await c.waitPartitions(admin, topic, 3)

  const cluster = await admin.describeCluster()
  if (!cluster.brokers.length) c.fail(`describeCluster() lists no brokers: ${JSON.stringify(cluster)}`)
  for (const b of cluster.brokers) if (!b.host || !(b.port > 0)) c.fail(`broker ${b.nodeId} has bad address ${b.host}:${b.port}`)
  const ids = new Set(cluster.brokers.map(b => b.nodeId))
  for (const p of t.partitions) {
    if (!ids.has(p.leader)) c.fail(`partition ${p.partitionId} leader ${p.leader} is not a listed broker (${[...ids]})`)
  }
  const names = await admin.listTopics()
  if (!names.includes(topic)) c.fail(`listTopics() does not include ${topic} (has ${names.length} topics: ${names.sort().slice(0, 20)})`)

  const producer = k.producer({ allowAutoTopicCreation: true })
  await producer.connect()
  await c.produceAll(producer, admin, autoTopic, [{ key: Buffer.from('k'), value: Buffer.from('v') }])
  await producer.disconnect()
  await c.waitPartitions(admin, autoTopic, 1)
  if (!(await admin.listTopics()).includes(autoTopic)) c.fail(`listTopics() does not include auto-created ${autoTopic}`)
  await admin.disconnect()
  c.passed(`created topic has 3 partitions, auto-created topic 1, brokers ${cluster.brokers.map(b => `${b.nodeId}=${b.host}:${b.port}`)}, controller ${cluster.controller}`)
})
