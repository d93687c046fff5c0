'use strict'
// kafkajs consumer group (classic protocol, kafkajs' eager rebalancing, its default
// RoundRobin assignor): three members on a 6-partition topic get two partitions
// each; one leaves (LeaveGroup on disconnect) and the other two take its partitions
// over. Every record is committed synchronously (commitOffsets) right after it is
// handled; a record may be delivered twice only if its commit failed because of a
// rebalance, and never to a member that does not own its partition.
const c = require('./compat')

const { errorCodes } = require('kafkajs/src/protocol/error')
const REBALANCE_ERRORS = ['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION']
// kafkajs rethrows a refused commit as KafkaJSNonRetriableError, dropping the
// protocol error's type but keeping its message: map the message back to the type.
const errorType = e => e.type || (errorCodes.find(x => x.message === e.message) || {}).type

c.main(async () => {
  const topic = c.topic('-grp')
  const group = c.topic('-group')
  const k = c.kafka()
  const admin = k.admin()
  await admin.connect()
  await c.createTopic(admin, topic, 6)
  await c.waitPartitions(admin, topic, 6)
  const producer = k.producer()
  await producer.connect()
  const batch = tag => [...Array(600).keys()].map(i => ({ key: Buffer.from(`k${i}`), value: Buffer.from(`${tag}-${i}`), partition: i % 6 }))
  await c.produceAll(producer, admin, topic, batch('first'))

  const delivered = new Map() // "partition:offset" -> member
  const owners = {} // member -> Set of partitions (its assignment in the current generation)
  const uncommitted = new Set() // records whose commit was refused because of a rebalance
  const errors = []
  let redelivered = 0

  async function start(name) {
    const consumer = k.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500, rebalanceTimeout: 20000, maxWaitTimeInMs: 200 })
    owners[name] = new Set()
    // kafkajs rebalances eagerly: each GROUP_JOIN carries the member's whole new assignment.
    consumer.on(consumer.events.GROUP_JOIN, e => {
      owners[name] = new Set((e.payload.memberAssignment[topic] || []).map(Number))
      c.log(`${name}: joined with ${[...owners[name]]} (leader ${e.payload.isLeader}, ${e.payload.duration} ms)`)
    })
    consumer.on(consumer.events.CRASH, e => errors.push(`${name} crashed: ${e.payload.error}`))
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const key = `${partition}:${message.offset}`
        if (!owners[name].has(partition)) errors.push(`${name} got partition ${partition} it does not own (${[...owners[name]]})`)
        if (delivered.has(key)) {
          if (!uncommitted.has(key)) errors.push(`committed record ${key} delivered to ${delivered.get(key)} and again to ${name}`)
          uncommitted.delete(key)
          redelivered++
        }
        delivered.set(key, name)
        try {
          await consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }])
        } catch (e) {
          const type = errorType(e)
          if (!REBALANCE_ERRORS.includes(type)) errors.push(`${name}: commit of ${key} failed: ${type || ''} ${e}`)
          else c.log(`${name}: commit of ${key} refused: ${type}`)
          uncommitted.add(key)
        }
      },
    })
    return consumer
  }

  const state = () => `owners ${JSON.stringify(Object.fromEntries(Object.entries(owners).map(([n, o]) => [n, [...o].sort()])))}, delivered ${delivered.size}`
  async function wait(until, seconds, what) {
    await c.waitFor(() => {
      if (errors.length) c.fail(errors[0])
      return until()
    }, seconds, () => `${what}; ${state()}`)
  }

  const t0 = Date.now()
  const members = {}
  await Promise.all(['m1', 'm2', 'm3'].map(async n => (members[n] = await start(n))))
  await wait(() => delivered.size === 600 && Object.keys(members).every(n => owners[n].size === 2), 120,
    '3 members with 2 partitions each and all 600 records')
  c.log(`3 members: ${state()} after ${((Date.now() - t0) / 1000).toFixed(1)}s`)
  const all = new Set([...owners.m1, ...owners.m2, ...owners.m3])
  if (all.size !== 6) c.fail(`assignment does not cover all partitions: ${state()}`)

  c.log('m3 leaves')
  await c.within(30, 'm3 disconnect', members.m3.disconnect())
  delete members.m3
  delete owners.m3
  await c.produceAll(producer, admin, topic, batch('second'))
  await wait(() => delivered.size === 1200 && Object.keys(members).every(n => owners[n].size === 3), 120,
    '2 members with 3 partitions each and all 1200 records')
  const final = { m1: [...owners.m1].sort(), m2: [...owners.m2].sort() }
  await Promise.all(Object.values(members).map(m => c.within(30, 'disconnect', m.disconnect())))
  if (errors.length) c.fail(errors[0])
  const union = new Set([...final.m1, ...final.m2])
  if (final.m1.some(p => final.m2.includes(p)) || union.size !== 6) c.fail(`final assignment overlaps or misses partitions: ${JSON.stringify(final)}`)
  await producer.disconnect()
  await admin.disconnect()
  c.passed(`2+2+2 then 3+3 ${JSON.stringify(final)}; 1200 records, no committed record twice (${redelivered} redelivered after a commit lost to a rebalance)`)
})
