; Broken on purpose: reads local 1 as an int before anything was stored there.
; expect: Accessing value from uninitialized register 1
.class public BadLocal
.super java/lang/Object

.method public static main([Ljava/lang/String;)V
    .limit stack 1
    .limit locals 2
    iload_1
    pop
    return
.end method
