/**
 * The ring under listener queues: a FIFO that grows and shrinks, checked against an array model.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { History } from "../../src/internal/history.js"
import { Ring } from "../../src/internal/ring.js"

describe("Ring", () => {
  it("behaves as a FIFO through growth, wrap-around and shrinking", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.array(FastCheck.oneof(FastCheck.integer({ min: 1, max: 200 }), FastCheck.constant(-1)), {
          maxLength: 200
        }),
        (ops) => {
          const ring = new Ring<number>()
          const model: Array<number> = []
          let next = 0
          for (const op of ops) {
            if (op === -1) {
              expect(ring.poll("empty")).toBe(model.length === 0 ? "empty" : model.shift())
            } else {
              for (let i = 0; i < op; i++) {
                ring.offer(next)
                model.push(next++)
              }
              // Drain a part, to move the head around the ring.
              for (let i = 0; i < op >> 1; i++) expect(ring.poll(undefined)).toBe(model.shift())
            }
            expect(ring.length).toBe(model.length)
          }
          const rest: Array<number> = []
          for (let item = ring.poll(undefined); item !== undefined; item = ring.poll(undefined)) rest.push(item)
          expect(rest).toEqual(model)
        }
      )
    )
  })

  it("takes items back at the head (offerFirst) and shows the head without removing it (peek)", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.array(FastCheck.constantFrom("offer", "offerFirst", "poll", "peek"), { maxLength: 300 }),
        (ops) => {
          const ring = new Ring<number>()
          const model: Array<number> = []
          let next = 0
          for (const op of ops) {
            switch (op) {
              case "offer":
                ring.offer(next)
                model.push(next++)
                break
              case "offerFirst":
                ring.offerFirst(next)
                model.unshift(next++)
                break
              case "poll":
                expect(ring.poll("empty")).toBe(model.length === 0 ? "empty" : model.shift())
                break
              case "peek":
                expect(ring.peek("empty")).toBe(model.length === 0 ? "empty" : model[0])
            }
            expect(ring.length).toBe(model.length)
          }
          const rest: Array<number> = []
          for (let item = ring.poll(undefined); item !== undefined; item = ring.poll(undefined)) rest.push(item)
          expect(rest).toEqual(model)
        }
      )
    )
  })
})

describe("History", () => {
  it("keeps the newest `limit` items, oldest first, across the wrap", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.integer({ min: 0, max: 50 }),
        FastCheck.integer({ min: 0, max: 200 }),
        (limit, n) => {
          const history = new History<number>(limit)
          for (let i = 0; i < n; i++) history.push(i)
          const expected = Array.from({ length: n }, (_, i) => i).slice(Math.max(0, n - limit))
          expect(history.toArray()).toEqual(expected)
        }
      )
    )
  })
})
