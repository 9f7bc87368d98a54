<?php
// SPDX-License-Identifier: MIT
/*
 * Servants/Topic.php - $client->topic(): ferry.topic, publish/subscribe
 * in memory (docs/topics.md). A message published on a subject
 * ('orders.eu.created') goes at most once to every subscription whose
 * pattern matches it ('*' one token, a last '>' the rest). A subscription
 * is named by its sub id (an int below 2^53) and taken from with poll(),
 * a long poll ferryd holds; one nobody polls for topic_idle_ms (30 s)
 * expires. Messages are ['seq', 'subject', 'payload']; seq counts from 1
 * per subscription, a hole in it is where messages were dropped. Options
 * of every method: 'deadline_ms'; subscribe: 'group', 'max_pending',
 * 'policy' ('drop_oldest' or 'close'); poll: 'wait_ms', 'max_msgs'.
 */

declare(strict_types=1);

namespace Ferry\Servants;

use Ferry\Exception\ConnectionException;
use Ferry\Exception\DeadlineException;
use Ferry\Exception\InvalidArgumentException;
use Ferry\FerryException;

final class Topic extends Servant
{
    /** A poll's deadline past its wait. */
    public const POLL_SLACK_MS = 5000;
    /** listen()'s long poll, below topic_idle_ms. */
    public const LISTEN_WAIT_MS = 25000;

    private function op(string $op, array $a, array $options): mixed
    {
        return Codec::decodeTopic($op, $this->call(Codec::TOPIC, Codec::encodeTopic($op, $a), $options));
    }

    /** Publishes $payload on $subject; the subscriptions it reached (a group counts once; 0: nobody listens). */
    public function publish(string $subject, string $payload = '', array $options = []): int
    {
        return $this->op('publish', ['subject' => $subject, 'message' => $payload], $options);
    }

    /**
     * Subscribes to $pattern; the sub id. 'group': share the messages of
     * (pattern, group) with its other members, each message to one.
     * 'max_pending': the buffer (0: 1000, at most 65536); when it is
     * full, 'policy' 'drop_oldest' (default) drops the oldest (told as
     * 'dropped'), 'close' closes the subscription (its next poll:
     * SlowConsumerException, then null).
     */
    public function subscribe(string $pattern, array $options = []): int|string
    {
        return $this->op('subscribe', ['pattern' => $pattern] + $options, $options);
    }

    /**
     * Up to 'max_msgs' (0: 1000) messages, oldest first, waiting up to
     * 'wait_ms' (0 or absent: answer at once; at most 600000) for the
     * first: ['messages' => [...], 'dropped' => N] ('messages' empty when
     * the wait passed; 'dropped': lost since the previous answer, told
     * once), or null when the subscription is gone (unsubscribed, expired,
     * closed and told). The call's deadline is wait_ms + 5 s unless
     * 'deadline_ms' is given.
     *
     * @return array{messages: list<array{seq: int|string, subject: string, payload: string}>,
     *     dropped: int|string}|null
     */
    public function poll(int|string $subId, array $options = []): ?array
    {
        $options['deadline_ms'] ??= (int)($options['wait_ms'] ?? 0) + self::POLL_SLACK_MS;
        return $this->op('poll', ['sub_id' => $subId] + $options, $options);
    }

    /** Drops the subscription; false when it was gone. */
    public function unsubscribe(int|string $subId, array $options = []): bool
    {
        return $this->op('unsubscribe', ['sub_id' => $subId], $options);
    }

    /** The totals (with 'subs' for a caller who may see internals), or one subscription's; null: no such one. */
    public function stats(int|string|null $subId = null, array $options = []): ?array
    {
        return $this->op('stats', ['sub_id' => $subId], $options);
    }

    /**
     * A subscriber's loop: subscribes to $pattern (the options of
     * subscribe()), polls (a long poll of 'wait_ms', default 25000) and
     * hands each message to $handler(array $message), one at a time.
     * 'on_gap'($dropped, $resubscribed) is told of lost messages: dropped
     * ones before the messages of an answer that tells them, and
     * ($dropped 0, $resubscribed true) when the subscription had expired
     * (the loop was away longer than topic_idle_ms) and was made again. A
     * handler that throws gets 'on_error'($e, $message) called (else
     * error_log) and the loop goes on: a message is not delivered twice.
     * Stops after 'max' messages, when 'stop'() returns true (asked before
     * each poll), or with 'until_empty' when a poll finds nothing within
     * its wait; it then unsubscribes. A DEADLINE or a lost connection
     * polls again; other errors are thrown (SlowConsumerException with
     * policy close: too slow). Returns the number of messages handled.
     *
     * @param callable(array{seq: int|string, subject: string, payload: string}): mixed $handler
     */
    public function listen(string $pattern, callable $handler, array $options = []): int
    {
        $max = $options['max'] ?? null;
        $stop = $options['stop'] ?? null;
        $onGap = $options['on_gap'] ?? null;
        $onError = $options['on_error'] ?? null;
        $sub = [];
        foreach (['group', 'max_pending', 'policy', 'deadline_ms'] as $k) {
            if (isset($options[$k])) {
                $sub[$k] = $options[$k];
            }
        }
        $poll = ['wait_ms' => $options['wait_ms'] ?? self::LISTEN_WAIT_MS, 'max_msgs' => $options['max_msgs'] ?? 0];
        if (!is_int($poll['wait_ms']) || $poll['wait_ms'] < 1) {
            throw new InvalidArgumentException('wait_ms must be at least 1'); // 0 would spin
        }
        Codec::encodeTopic('poll', $poll); // bad numbers fail before subscribing
        $id = $this->subscribe($pattern, $sub);
        $n = 0;
        $pause = 0;
        try {
            while ($max === null || $n < $max) {
                if ($stop !== null && $stop()) {
                    break;
                }
                try {
                    $got = $this->poll($id, $poll);
                } catch (DeadlineException) {
                    continue; // ferryd's max_deadline_ms was shorter than the wait
                } catch (ConnectionException) {
                    usleep($pause * 1000);
                    $pause = min(2000, $pause * 2 ?: 50);
                    continue; // the client connects again on the next call
                }
                $pause = 0;
                if ($got === null) {
                    $id = $this->subscribe($pattern, $sub);
                    if ($onGap !== null) {
                        $onGap(0, true);
                    }
                    continue;
                }
                if ($got['dropped'] !== 0 && $onGap !== null) {
                    $onGap($got['dropped'], false);
                }
                if ($got['messages'] === [] && !empty($options['until_empty'])) {
                    break;
                }
                foreach ($got['messages'] as $m) {
                    if ($max !== null && $n >= $max) {
                        break; // the rest of the answer is lost: at most once
                    }
                    $n++;
                    try {
                        $handler($m);
                    } catch (\Throwable $e) {
                        if ($onError !== null) {
                            $onError($e, $m);
                        } else {
                            error_log("ferry: topic '$pattern' message {$m['seq']}: " . get_class($e) . ': '
                                . $e->getMessage());
                        }
                    }
                }
            }
        } finally {
            try {
                $this->unsubscribe($id);
            } catch (FerryException) {
                // gone, or ferryd unreachable: it expires
            }
        }
        return $n;
    }
}
