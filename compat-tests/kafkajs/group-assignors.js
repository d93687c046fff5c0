'use strict'
// kafkajs client-side assignors: kafkajs ships only roundRobin
// (PartitionAssigners.roundRobin; range and sticky are not built in). A first member
// takes all 4 partitions, a second joins, and they end with 2 each, disjoint and
// covering the topic.
const { PartitionAssigners } = require('kafkajs')
const c = require('./compat')

c.main(async () => {
  const k = c.kafka()
  const admin = k.admin()
  await admin.connect()
  const results = []
  for (const [name, assigner] of [['roundrobin', PartitionAssigners.roundRobin]]) {
    const topic = c.topic('-' + name)
    const group = c.topic('-' + name + '-group')
    await c.createTopic(admin, topic, 4)
    await c.waitPartitions(admin, topic, 4)
    const owners = {}
    const consumers = []
    const member = async m => {
      owners[m] = []
      const consumer = k.consumer({ groupId: group, partitionAssigners: [assigner], sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
      consumer.on(consumer.events.GROUP_JOIN, e => {
        owners[m] = (e.payload.memberAssignment[topic] || []).map(Number).sort()
      })
      await consumer.connect()
      await consumer.subscribe({ topics: [topic] })
      await consumer.run({ autoCommit: false, eachMessage: async () => {} })
      consumers.push(consumer)
    }
    const loads = () => Object.keys(owners).sort().map(n => owners[n].length)
    await member('a')
    await c.waitFor(() => c.equal(loads(), [4]), 60, () => `${name}: loads [4], owners ${JSON.stringify(owners)}`)
    await member('b')
    await c.waitFor(() => c.equal(loads(), [2, 2]), 60, () => `${name}: loads [2, 2], owners ${JSON.stringify(owners)}`)
    const final = { a: owners.a, b: owners.b }
    await Promise.all(consumers.map(x => c.within(30, 'disconnect', x.disconnect())))
    if (final.a.some(p => final.b.includes(p)) || new Set([...final.a, ...final.b]).size !== 4) c.fail(`${name}: final assignment ${JSON.stringify(final)}`)
    c.log(`${name}: ${JSON.stringify(final)}`)
    results.push(`${name} ${JSON.stringify(final.a)}/${JSON.stringify(final.b)}`)
  }
  await admin.disconnect()
  c.passed(results.join('; ') + ' (range, sticky: not built into kafkajs)')
})
