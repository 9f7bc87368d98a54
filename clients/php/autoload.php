<?php
// SPDX-License-Identifier: MIT
/*
 * autoload.php - PSR-4 autoloading of Ferry\ from src/ without Composer:
 * require this file, then use Ferry\Client and Ferry\Worker.
 */

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'Ferry\\', 6) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, 6)) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
