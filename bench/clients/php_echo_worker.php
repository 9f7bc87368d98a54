<?php
// SPDX-License-Identifier: MIT
/*
 * php_echo_worker.php - a Ferry\Worker that answers every job with its
 * payload, for php_worker_bench.sh (beside the C echo_worker).
 *
 *   php bench/clients/php_echo_worker.php ADDR SERVICE CREDIT
 */

declare(strict_types=1);

require dirname(__DIR__, 2) . '/clients/php/autoload.php';

$w = new Ferry\Worker($argv[1], ['name' => 'php-echo']);
$w->register($argv[2], static fn (Ferry\Job $job): string => $job->payload, (int)$argv[3]);
$w->on('ready', static function (): void {
    echo "READY\n";
});
$w->run();
