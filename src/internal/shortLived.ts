/**
 * Containers that live for one batch of messages, made so that V8 never makes them old at birth.
 *
 * V8 counts, for each object or array literal in the code (its allocation site), how many of the
 * objects made there outlive a collection of the young generation. Once it has seen most of them do
 * while the young generation is at its largest (a thousand connections greeted at once, each batch
 * waiting its turn), it makes every later one directly in the old generation from then on. Such a
 * container, once done with, is garbage that only a full collection frees; until then it still
 * points to the young messages it held, so every young collection copies them, and the next one moves
 * them to the old generation. In a fleet of 1,000 VMs that cost a third of the event throughput.
 *
 * Objects made by `new` of a class, and arrays made by `Array.of`, are not counted so (Node 20 and
 * 24). So the containers that the event path makes per chunk or per batch are class instances, and
 * their arrays come from here: the reader's batches, the session's waiting batches, the registry's
 * inbox and requests, a framer's partial line, a fleet's tagged events. Left as they are: a
 * listener's takes, one made per `take`, where the call to `Array.of` cost a take loop 8% of its
 * events a second; the reader's items (replies, the greeting), a few per command; and the array of
 * one pull of a fleet's `all`, made with its size, a few times between two collections (V8 decides
 * on a site only once it has seen a hundred of its objects between two).
 *
 * @internal
 */
export const shortLivedArray = <A>(): Array<A> => Array.of<A>()
