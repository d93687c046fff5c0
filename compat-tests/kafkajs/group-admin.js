'use strict'
// kafkajs admin over a live group: listGroups shows it (protocolType "consumer"),
// describeGroups shows it Stable with its one member (client id, assignment of both
// partitions), fetchOffsets returns the committed offsets, deleteGroups is refused
// with NON_EMPTY_GROUP while the member is in the group and succeeds after it left,
// and the group is then no longer listed. (kafkajs has no OffsetDelete API.)
const { AssignerProtocol } = require('kafkajs')
const c = require('./compat')

c.main(async () => {
  const topic = c.topic('-gadmin')
  const group = c.topic('-gadmin-group')
  const k = c.kafka(c.bootstrap(), 'admin-probe')
  const admin = k.admin()
  await admin.connect()
  await c.createTopic(admin, topic, 2)
  await c.waitPartitions(admin, topic, 2)
  const producer = k.producer()
  await producer.connect()
  await c.produceAll(producer, admin, topic, [...Array(10).keys()].map(i => ({ key: Buffer.from(`k${i}`), value: Buffer.from('v'), partition: i % 2 })))
  await producer.disconnect()

  const consumer = k.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
  let got = 0
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({ autoCommit: false, eachMessage: async () => { got++ } })
  await c.waitFor(() => got >= 10, 60, () => `10 records (got ${got})`)
  await consumer.commitOffsets([0, 1].map(partition => ({ topic, partition, offset: '5' })))
  // The consumer keeps running (and heartbeating) while the admin client looks.

  const listed = (await admin.listGroups()).groups.find(g => g.groupId === group)
  if (!listed || listed.protocolType !== 'consumer') c.fail(`listGroups: ${group} -> ${JSON.stringify(listed)}`)
  const { groups } = await admin.describeGroups([group])
  const desc = groups[0]
  if (groups.length !== 1 || desc.errorCode || desc.state !== 'Stable' || desc.protocolType !== 'consumer' || desc.members.length !== 1 || desc.members[0].clientId !== 'admin-probe') {
    c.fail(`describeGroups: ${c.short(groups)}`)
  }
  const assignment = AssignerProtocol.MemberAssignment.decode(desc.members[0].memberAssignment).assignment
  if (!c.equal(Object.keys(assignment), [topic]) || !c.equal(assignment[topic].map(Number).sort(), [0, 1])) c.fail(`describeGroups: member assignment ${JSON.stringify(assignment)}`)
  const fetched = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  const offsets = Object.fromEntries(fetched[0].partitions.map(p => [p.partition, p.offset]))
  if (!c.equal([offsets[0], offsets[1]], ['5', '5'])) c.fail(`fetchOffsets: ${JSON.stringify(fetched)}`)

  let liveErr = null
  try {
    await admin.deleteGroups([group])
  } catch (e) {
    liveErr = e
  }
  const liveTypes = liveErr && liveErr.groups ? liveErr.groups.map(g => g.error && g.error.type) : []
  if (!c.equal(liveTypes, ['NON_EMPTY_GROUP'])) c.fail(`deleting a live group: expected NON_EMPTY_GROUP, got ${liveErr ? `${liveErr.name}: ${liveErr.message} ${JSON.stringify(liveTypes)}` : 'success'}`)

  await c.within(30, 'consumer disconnect', consumer.disconnect())
  const deleted = await admin.deleteGroups([group])
  if (!c.equal(deleted.map(g => [g.groupId, g.errorCode]), [[group, 0]])) c.fail(`deleting the empty group: ${JSON.stringify(deleted)}`)
  if ((await admin.listGroups()).groups.some(g => g.groupId === group)) c.fail('deleted group is still listed')
  await admin.disconnect()
  c.passed(`listed (consumer), described (Stable, 1 member admin-probe, protocol ${desc.protocol}, partitions [0, 1]), offsets {0: 5, 1: 5}; NON_EMPTY_GROUP while live; DeleteGroups after`)
})
