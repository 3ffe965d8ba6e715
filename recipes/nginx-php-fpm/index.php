<?php echo "php " . PHP_VERSION . "\n";
