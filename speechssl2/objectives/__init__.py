"""SSL pre-training objectives (OBJECTIVES registry): heads + targets + named loss terms."""
