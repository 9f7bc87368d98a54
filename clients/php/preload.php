<?php
// SPDX-License-Identifier: MIT
/*
 * preload.php - for php-fpm: opcache.preload=/path/to/clients/php/preload.php
 * (with opcache.preload_user) compiles and links every Ferry\ class once
 * when FPM starts, so a page view pays nothing to load the client.
 */

declare(strict_types=1);

foreach (['ErrorCode', 'FerryException', 'Frame', 'Codec', 'Address', 'Call', 'WaitTimeoutException',
          'Connection', 'Servants/Codec', 'Servants/Reader', 'Servants/Servant', 'Servants/Cache',
          'Servants/Kv', 'Servants/Id', 'Servants/Queue', 'Servants/ConsumedJob', 'Servants/Topic', 'Client', 'Job',
          'Worker'] as $class) {
    opcache_compile_file(__DIR__ . "/src/$class.php");
}
foreach (glob(__DIR__ . '/src/Exception/*.php') as $file) {
    opcache_compile_file($file);
}
